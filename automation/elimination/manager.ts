import { domainEventOf } from '../../core/eventstore/typed-events.js';
import { v5 as uuidv5 } from 'uuid';
import {
  approvalStream,
  approvals,
  type ApprovalEvent,
  type Party,
} from '../../core/approvals/approval.js';
import { CAPABILITIES } from '../../core/capabilities/capabilities.js';
import { AUTOMATION_POLICY_STREAM, automationPolicy } from '../../core/capabilities/policy.js';
import type { CommandHandler } from '../../core/commands/command-handler.js';
import { deskStream, desk } from '../../core/engine/desk.js';
import {
  elimination,
  eliminationStream,
  type EliminationFigures,
  type EliminationState,
} from '../../core/strategies/elimination.js';
import { strategies, strategyStream } from '../../core/strategies/strategy.js';
import { closingOrder } from '../../core/trading/orders.js';
import type { EliminationCandidate, OpenPosition } from '../../projections/elimination-queries.js';
import { automationActor, intent, type Intent, type ProcessManager } from '../process-manager.js';
import {
  eliminationDecision,
  figuresOf,
  windowStart,
  type EliminationDecision,
  type EliminationThresholds,
} from './decide.js';

/** Capability 7 acts as this process manager. */
export const ELIMINATION = 'elimination';
/** The party its retirement requests are made in: an analyst's, so a person approves (four eyes). */
export const ELIMINATION_PARTY: Party = { id: automationActor(ELIMINATION), role: 'analyst' };
const REQUEST_NAMESPACE = '3d0f5c2a-7e41-4b8e-9a6c-1f2e3d4c5b6a';

/** The retirement request's id, derived from the strategy and its suspension: one per suspension. */
export const retirementRequestId = (strategyId: string, suspendedAt: string): string =>
  uuidv5(`retire:${strategyId}:${suspendedAt}`, REQUEST_NAMESPACE);

/** What it reads besides streams (projections/elimination-queries.ts, the market). */
export interface EliminationReads {
  strategies(): Promise<EliminationCandidate[]>;
  openPositions(strategyId: string): Promise<OpenPosition[]>;
  /** The strategy's daily equity over [from, to) (automation/elimination/shadow.ts). */
  equity(
    strategy: EliminationCandidate,
    from: Date,
    to: Date,
  ): Promise<{ equity: number[]; days: string[] } | null>;
}

const summary = (figures: EliminationFigures, breaches: readonly string[]): string =>
  `elimination: ${breaches.join('; ')} (${figures.from}..${figures.to})`;

/**
 * The commands of one decision, each keyed (with the day's slot) so a restart issues it once:
 *   suspend → record, pause the strategy, close each open position with a reduce-only market
 *   order through its portfolio's desk; propose → record, open a `strategy_retirement` approval
 *   request; recover → record, resume; clear → record. A recover or clear while a retirement
 *   request is open (the record holds its id) also withdraws it, as its requester, so approvers
 *   are not left a stale request.
 */
export function decisionIntents(
  strategy: EliminationCandidate,
  decision: NonNullable<EliminationDecision>,
  positions: readonly OpenPosition[],
  state: Pick<EliminationState, 'suspendedAt' | 'requestId'>,
  now: Date,
): Intent[] {
  const { strategyId } = strategy;
  const at = now.toISOString();
  const record = eliminationStream(strategyId);
  const gated = <T extends Intent>(item: T): T => ({ ...item, capability: 'elimination' });
  switch (decision.type) {
    case 'suspend':
      return suspendIntents(strategyId, decision, positions, now).map(gated);
    case 'propose_retirement': {
      const { figures, breaches } = decision;
      const requestId = retirementRequestId(strategyId, state.suspendedAt ?? at);
      return [
        intent(
          elimination,
          record,
          { type: 'ProposeRetirement', strategyId, at, requestId, figures, breaches },
          'propose',
        ),
        retirementRequest(strategyId, requestId, figures, breaches, at),
      ].map(gated);
    }
    case 'recover':
      return [
        intent(
          elimination,
          record,
          {
            type: 'ClearSuspension',
            strategyId,
            at,
            outcome: 'recovered',
            reason: `recovered: sharpe=${decision.figures.sharpe}, drawdown=${decision.figures.drawdown}, losing weeks=${decision.figures.losingWeeksInARow} (${decision.figures.from}..${decision.figures.to})`,
          },
          'recover',
        ),
        intent(
          strategies,
          strategyStream(strategyId),
          { type: 'ResumeStrategy', strategyId },
          'resume',
        ),
        ...withdrawOpen(state.requestId, 'recovered'),
      ].map(gated);
    case 'clear':
      return [
        intent(
          elimination,
          record,
          {
            type: 'ClearSuspension',
            strategyId,
            at,
            outcome: decision.outcome,
            reason: decision.reason,
          },
          'clear',
        ),
        ...withdrawOpen(state.requestId, decision.reason),
      ].map(gated);
  }
}

/**
 * The withdrawal of the retirement request still open, if any. After the record's
 * ClearSuspension: the ApprovalWithdrawn it causes then finds nothing to keep.
 */
function withdrawOpen(openRequest: string | null, reason: string): Intent[] {
  return openRequest === null
    ? []
    : [
        intent(
          approvals,
          approvalStream(openRequest),
          {
            type: 'WithdrawApproval',
            requestId: openRequest,
            by: ELIMINATION_PARTY,
            reason: `the suspension was cleared (${reason}): nothing to retire`,
          },
          `withdraw:${openRequest}`,
        ),
      ];
}

/** Record, pause the strategy, close each open position with a reduce-only market order. */
function suspendIntents(
  strategyId: string,
  { figures, breaches }: { figures: EliminationFigures; breaches: string[] },
  positions: readonly OpenPosition[],
  now: Date,
): Intent[] {
  const at = now.toISOString();
  const reason = summary(figures, breaches);
  return [
    intent(
      elimination,
      eliminationStream(strategyId),
      { type: 'Suspend', strategyId, at, figures, breaches },
      'suspend',
    ),
    intent(
      strategies,
      strategyStream(strategyId),
      { type: 'PauseStrategy', strategyId, reason },
      'pause',
    ),
    ...positions.map((p) =>
      intent(
        desk,
        deskStream(p.portfolioId),
        {
          type: 'RequestOrder',
          order: closingOrder(`m-elim-${strategyId}-${p.symbol}-${at.slice(0, 10)}`.slice(0, 100), {
            ...p,
            strategyId,
          }),
          requestedAt: now.getTime(),
        },
        `close:${p.portfolioId}:${p.symbol}`,
      ),
    ),
  ];
}

/** The `strategy_retirement` approval request, made as an analyst so that a person approves it. */
function retirementRequest(
  strategyId: string,
  requestId: string,
  figures: EliminationFigures,
  breaches: string[],
  at: string,
): Intent {
  return intent(
    approvals,
    approvalStream(requestId),
    {
      type: 'RequestApproval',
      requestId,
      kind: 'strategy_retirement',
      subject: { type: 'strategy_retirement', id: strategyId },
      requester: ELIMINATION_PARTY,
      payload: { strategyId, figures, breaches },
      reason: `still breaching after the cooling period: ${breaches.join('; ')}`,
      now: at,
    },
    'request',
  );
}

type Approved = Extract<ApprovalEvent, { type: 'ApprovalApproved' }>;

/**
 * An approved retirement: confirmed on the record, and the strategy retired if the proposal is
 * still the record's; overridden if a person resumed or retired the strategy meanwhile.
 */
async function onRetirementApproved(
  commands: CommandHandler,
  approved: Approved,
  at: string,
): Promise<Intent[]> {
  const strategyId = approved.data.subject.id;
  const { requestId, approvers } = approved.data;
  // Retire only for the proposal the record still holds (or has confirmed, on a replay): a
  // request approved after the suspension was cleared (a person resumed the strategy, or it
  // recovered) must not retire a trading strategy; its ConfirmRetirement is refused, recorded.
  // A person who resumed it while the request waited overrides elimination too: a proposal
  // stands only while the strategy is still paused.
  const { state: record } = await commands.load(elimination, eliminationStream(strategyId));
  const { state: strategy } = await commands.load(strategies, strategyStream(strategyId));
  if (
    record.requestId === requestId &&
    record.status === 'retirement_proposed' &&
    strategy.status !== 'paused'
  )
    return [
      intent(
        elimination,
        eliminationStream(strategyId),
        {
          type: 'ClearSuspension',
          strategyId,
          at,
          outcome: strategy.status === 'retired' ? 'retired' : 'resumed',
          reason: `a person ${strategy.status === 'retired' ? 'retired' : 'resumed'} the strategy while retirement request ${requestId} waited: its approval retires nothing`,
        },
        'overridden',
      ),
    ];
  const current =
    record.requestId === requestId &&
    (record.status === 'retirement_proposed' || record.status === 'retired');
  return [
    intent(
      elimination,
      eliminationStream(strategyId),
      { type: 'ConfirmRetirement', strategyId, at, requestId, approvers },
      'confirm',
    ),
    ...(current
      ? [
          intent(
            strategies,
            strategyStream(strategyId),
            {
              type: 'RetireStrategy',
              strategyId,
              reason: `elimination: retirement approved by ${approvers.map((a) => a.id).join(', ')} (request ${requestId})`,
            },
            'retire',
          ),
        ]
      : []),
  ];
}

/**
 * Capability 7 (docs/automation.md): once a day (the tick's slot is the UTC day) it computes each
 * strategy's rolling figures and decides with `eliminationDecision`; the outcome of a retirement
 * request (a person's decision, so not gated) retires the strategy or keeps it suspended.
 */
export function eliminationManager(deps: {
  commands: CommandHandler;
  reads: EliminationReads;
  tickMs?: number;
}): ProcessManager {
  const { commands, reads } = deps;
  let evaluated: string | null = null;
  return {
    name: ELIMINATION,
    serves: ['elimination'],
    handles: ['ApprovalApproved', 'ApprovalRejected', 'ApprovalWithdrawn', 'ApprovalExpired'],
    tickMs: deps.tickMs ?? 60_000,

    async react(event) {
      const parsed = approvals.parseEvent(domainEventOf(event));
      if (parsed.type === 'ApprovalRequested' || parsed.type === 'ApprovalGranted') return [];
      if (parsed.data.kind !== 'strategy_retirement') return [];
      const strategyId = parsed.data.subject.id;
      const { requestId } = parsed.data;
      const at = event.recordedAt.toISOString();
      if (parsed.type === 'ApprovalApproved') return onRetirementApproved(commands, parsed, at);
      const how =
        parsed.type === 'ApprovalExpired'
          ? 'expired'
          : parsed.type === 'ApprovalRejected'
            ? 'rejected'
            : 'withdrawn';
      return [
        intent(
          elimination,
          eliminationStream(strategyId),
          {
            type: 'ClearSuspension',
            strategyId,
            at,
            outcome: 'kept',
            reason: `retirement request ${requestId} ${how}: the strategy stays paused until a person resumes it`,
          },
          'kept',
        ),
      ];
    },

    async tick(now) {
      const slot = now.toISOString().slice(0, 10);
      if (evaluated === slot) return undefined;
      const intents = await dailyIntents(commands, reads, now);
      evaluated = slot;
      return { slot, intents };
    },
  };
}

/** Each strategy's figures over its window, decided on, as keyed intents. */
async function dailyIntents(
  commands: CommandHandler,
  reads: EliminationReads,
  now: Date,
): Promise<Intent[]> {
  const { state: policy } = await commands.load(automationPolicy, AUTOMATION_POLICY_STREAM);
  // Decided even while switched off: the gate then records what it would have done, and why not.
  const thresholds: EliminationThresholds = CAPABILITIES.elimination.thresholds.parse(
    policy.elimination.thresholds,
  );
  const intents: Intent[] = [];
  for (const strategy of await reads.strategies()) {
    const { state: record } = await commands.load(
      elimination,
      eliminationStream(strategy.strategyId),
    );
    if (record.status === 'retired') continue;
    if (record.status === 'watching' && strategy.status === 'paused') continue;
    const from = windowStart(record, thresholds.windowDays, now);
    const series = await reads.equity(strategy, from, now);
    const figures = series ? figuresOf(series.equity, series.days) : null;
    const decision = eliminationDecision({ strategy, record, figures, thresholds, now });
    if (!decision) continue;
    const positions =
      decision.type === 'suspend' ? await reads.openPositions(strategy.strategyId) : [];
    intents.push(
      ...decisionIntents(strategy, decision, positions, record, now).map((item) => ({
        ...item,
        key: `${strategy.strategyId}:${item.key ?? ''}`,
      })),
    );
  }
  return intents;
}
