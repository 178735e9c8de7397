import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ZodFastify } from '../conventions.js';
import {
  approvalStream,
  approvals,
  type ApprovalKind,
  type Subject,
} from '../../../core/approvals/approval.js';
import type { CommandResult } from '../../../core/commands/idempotency.js';
import type { Decider, DomainEvent } from '../../../core/decider.js';
import { portfolioOf } from '../../../core/engine/desk.js';
import { QcatError } from '../../../core/errors.js';
import type { JsonObject } from '../../../core/eventstore/event-store.js';
import { type RiskScope } from '../../../core/risk/common.js';
import { TIMEFRAMES } from '../../../core/strategies/kinds.js';
import type { ApiServices } from '../../services.js';
import { HttpProblem } from '../../problem.js';
import { commandAnswer } from '../conventions.js';
import { commandOf } from '../../command-route.js';
import { RiskQueries } from '../../../projections/risk-queries.js';
import { TradingQueries } from '../../../projections/trading-queries.js';
import { StrategyQueries } from '../../../projections/strategy-queries.js';
import { ApprovalQueries } from '../../../projections/approval-queries.js';
import { SYMBOL } from './schemas.js';
export type { ZodFastify };

/** What the risk routes share: the read models they query and the checks and helpers of commands. */
export type RiskContext = ReturnType<typeof riskContext>;

export function riskContext(
  runtime: Pick<ApiServices, 'commands' | 'eventStore' | 'pool' | 'projections'>,
) {
  const queries = {
    risk: new RiskQueries(runtime.pool),
    trading: new TradingQueries(runtime.pool),
    strategies: new StrategyQueries(runtime.pool),
    approvals: new ApprovalQueries(runtime.pool),
  };
  const handle = async (
    request: FastifyRequest,
    decider: Decider<unknown, JsonObject, DomainEvent>,
    streamId: string,
    command: JsonObject,
  ): Promise<CommandResult> =>
    commandOf(request, runtime.commands).handle(decider, streamId, command);
  const as = <S, C extends JsonObject, E extends DomainEvent>(
    decider: Decider<S, C, E>,
  ): Decider<unknown, JsonObject, DomainEvent> => decider;

  const checkScope = (scope: RiskScope): Promise<void> => assertScope(queries, scope);
  const checkBook = (portfolioId: string, strategyId: string, name: string): Promise<void> =>
    assertBook(queries, portfolioId, strategyId, name);

  /**
   * Opens an approval request (four eyes: a risk officer other than the requester approves; the
   * approval flow then applies it). With an Idempotency-Key the request id is derived from it, so
   * a retry opens nothing new. One pending request per kind and subject.
   */
  const openRequest = async (
    request: FastifyRequest,
    reply: FastifyReply,
    purpose: string,
    kind: ApprovalKind,
    subject: Subject,
    payload: JsonObject,
    why: string,
  ) => {
    const command = commandOf(request, runtime.commands);
    const { party } = command;
    const requestId = command.newId(purpose);
    const open = await queries.approvals.pendingOn(kind, subject, requestId);
    if (open)
      throw new QcatError(
        'REQUEST_ALREADY_OPEN',
        `a ${kind} request for ${subject.type} ${subject.id} is already pending: ${open}`,
        { openRequestId: open },
      );
    const result = await command.handle(approvals, approvalStream(requestId), {
      type: 'RequestApproval',
      requestId,
      kind,
      subject,
      requester: party,
      payload,
      reason: why,
      now: new Date().toISOString(),
    });
    await runtime.projections.waitFor('approvals', result.position, 2000);
    void reply.header('location', `/api/v1/approvals/${requestId}`);
    return reply.code(201).send({ ...commandAnswer(reply, result), approvalRequestId: requestId });
  };

  return { runtime, queries, handle, as, checkScope, checkBook, openRequest };
}

/** The read models the scope and book checks ask. */
interface CheckQueries {
  strategies: StrategyQueries;
  trading: TradingQueries;
}

/** A scope that can carry risk: a known strategy, a paper portfolio, a symbol. */
async function assertScope(queries: CheckQueries, scope: RiskScope): Promise<void> {
  if (scope.type === 'symbol' && !SYMBOL.test(scope.id))
    throw new HttpProblem(
      400,
      'VALIDATION_FAILED',
      `params.scopeId: expected a symbol such as BTCUSDT, not ${scope.id}`,
    );
  if (scope.type === 'strategy' && !(await queries.strategies.exists(scope.id)))
    throw new HttpProblem(404, 'STRATEGY_NOT_FOUND', `strategy ${scope.id} does not exist`);
  if (
    scope.type === 'portfolio' &&
    !TIMEFRAMES.some((tf) => portfolioOf(tf) === scope.id) &&
    !(await queries.trading.portfolioExists(scope.id))
  )
    throw new HttpProblem(
      404,
      'PORTFOLIO_NOT_FOUND',
      `portfolio ${scope.id} does not exist (paper portfolios are paper-<timeframe>)`,
    );
}

/** A book: a strategy trading the symbol in the portfolio of its timeframe. */
async function assertBook(
  queries: CheckQueries,
  portfolioId: string,
  strategyId: string,
  name: string,
): Promise<void> {
  const strategy = await queries.strategies.tradingOf(strategyId);
  if (!strategy)
    throw new HttpProblem(404, 'STRATEGY_NOT_FOUND', `strategy ${strategyId} does not exist`);
  if (!strategy.symbols.includes(name) || portfolioOf(strategy.timeframe) !== portfolioId)
    throw new HttpProblem(
      404,
      'BOOK_NOT_FOUND',
      `strategy ${strategyId} trades ${strategy.symbols.join(', ')} in ${portfolioOf(strategy.timeframe)}, not ${name} in ${portfolioId}`,
    );
}
