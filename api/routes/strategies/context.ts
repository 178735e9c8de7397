import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ZodFastify } from '../conventions.js';
import type { z } from 'zod';
import type { CommandResult } from '../../../core/commands/idempotency.js';
import {
  strategies,
  strategyStream,
  type StrategyCommand,
} from '../../../core/strategies/strategy.js';
import type { StrategyRouteServices } from '../../services.js';
import { StrategyQueries } from '../../../projections/strategy-queries.js';
import { commandAnswer } from '../conventions.js';
import { commandOf } from '../../command-route.js';
import type { requestAnswer } from './schemas.js';

export type { ZodFastify };

/** What the strategy routes share: the read model's queries and the command helpers. */
export type StrategyContext = ReturnType<typeof strategyContext>;

export function strategyContext(runtime: StrategyRouteServices) {
  const queries = new StrategyQueries(runtime.pool);
  const handle = (request: FastifyRequest, command: StrategyCommand): Promise<CommandResult> =>
    commandOf(request, runtime.commands).handle(
      strategies,
      strategyStream(command.strategyId),
      command,
    );

  /** A command that opens an approval request: wait (briefly) until the flow has opened it. */
  const opening = async (
    reply: FastifyReply,
    result: CommandResult,
    approvalRequestId: string,
  ): Promise<z.infer<typeof requestAnswer>> => {
    await runtime.automation.waitFor('approval-flow', result.position, 2000);
    return { ...commandAnswer(reply, result), approvalRequestId };
  };
  return { runtime, queries, handle, opening };
}
