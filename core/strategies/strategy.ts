// Over 400 lines without comments, listed in TEMPORARILY_LARGE (eslint.config.mjs): the strategy
// decider (lifecycle, parameters, approvals, standing approvals), to be split by command family.
import { z } from 'zod';
import type { Party } from '../approvals/approval.js';
import { ROLES } from '../access/roles.js';
import type { Decider, DomainEvent } from '../decider.js';
import { QcatError, ValidationError } from '../errors.js';
import type { JsonObject } from '../eventstore/event-store.js';
import { TIMEFRAMES, validateParameters } from './kinds.js';
import { outOfBounds } from './parameter-bounds.js';

/**
 * The strategy lifecycle: draft → in review → approved → paper → live ⇄ paused → retired.
 * Activation, promotion to live and parameter changes once approved go through approval requests;
 * the approval flow (automation/approval-flow/) turns their outcome into the commands marked
 * "from the approval flow" below.
 */

export const STRATEGY_STATES = [
  'draft',
  'in_review',
  'approved',
  'paper',
  'live',
  'paused',
  'retired',
] as const;
export type StrategyStatus = (typeof STRATEGY_STATES)[number];

/** Stream of one strategy: `strategy-<strategyId>`. */
export const strategyStream = (strategyId: string): string => `strategy-${strategyId}`;

export interface StrategyDefinition extends JsonObject {
  name: string;
  description: string;
  kind: string;
  symbols: string[];
  timeframe: string;
  parameters: JsonObject;
  /** Capital the owner asks to be allocated, in the quote currency. */
  capitalRequest: number;
}

export type Edits = Partial<StrategyDefinition> & JsonObject;

/**
 * What let a parameter change apply without an approval request of its own: a standing approval
 * a risk officer requested and another approved (core/optimization/policy.ts), with its bounds.
 */
export interface StandingAuthority extends JsonObject {
  type: 'standing_approval';
  standingApprovalId: string;
  maxRelativeChange: number;
  /** Who approved the standing approval. */
  grantedBy: Party[];
  /** The optimization whose result it is. */
  optimizationId: string;
}

/** How an approval request ended, when it did not end approved. */
export type Declined = 'rejected' | 'withdrawn' | 'expired' | 'lapsed';

interface Ref extends JsonObject {
  strategyId: string;
}
interface Decline extends Ref {
  requestId: string;
  outcome: Declined;
  reason: string;
}

export type StrategyEvent =
  | DomainEvent<'StrategyCreated', Ref & StrategyDefinition & { owner: Party; parameterVersion: 1 }>
  | DomainEvent<'StrategyEdited', Ref & { changes: Edits }>
  | DomainEvent<'StrategySubmittedForReview', Ref & { requestId: string; requestedBy: Party }>
  | DomainEvent<'StrategyApproved', Ref & { requestId: string; approvers: Party[] }>
  | DomainEvent<'StrategyActivationDeclined', Decline>
  | DomainEvent<'StrategyPaperTradingStarted', Ref>
  | DomainEvent<'StrategyPromotionRequested', Ref & { requestId: string; requestedBy: Party }>
  | DomainEvent<'StrategyPromotedToLive', Ref & { requestId: string; approvers: Party[] }>
  | DomainEvent<'StrategyPromotionDeclined', Decline>
  | DomainEvent<
      'StrategyParameterChangeRequested',
      Ref & { requestId: string; requestedBy: Party; parameters: JsonObject; fromVersion: number }
    >
  | DomainEvent<
      'StrategyParametersChanged',
      Ref & {
        requestId: string;
        version: number;
        parameters: JsonObject;
        approvers: Party[];
        /** Present when a standing approval, not an approval request, authorized it. */
        authority?: StandingAuthority;
        appliedBy?: Party;
      }
    >
  | DomainEvent<'StrategyParameterChangeDeclined', Decline>
  | DomainEvent<'StrategyPaused', Ref & { reason: string; from: 'paper' | 'live' }>
  | DomainEvent<'StrategyResumed', Ref & { to: 'paper' | 'live' }>
  | DomainEvent<
      'StrategyRetired',
      Ref & { reason: string; from: StrategyStatus; openRequests: string[] }
    >;

export type StrategyCommand =
  | ({ type: 'CreateStrategy'; strategyId: string; owner: Party } & StrategyDefinition)
  | { type: 'EditStrategy'; strategyId: string; changes: Edits }
  | { type: 'SubmitForReview'; strategyId: string; requestId: string; by: Party }
  | { type: 'StartPaperTrading'; strategyId: string }
  | { type: 'RequestPromotion'; strategyId: string; requestId: string; by: Party }
  | {
      type: 'RequestParameterChange';
      strategyId: string;
      requestId: string;
      by: Party;
      parameters: JsonObject;
    }
  | {
      /** Automation, within a standing approval's bounds: no second person (capability 2). */
      type: 'ApplyParametersUnderStandingApproval';
      strategyId: string;
      changeId: string;
      by: Party;
      parameters: JsonObject;
      /** The version the change was computed from: it must still be live. */
      fromVersion: number;
      authority: StandingAuthority;
    }
  | { type: 'PauseStrategy'; strategyId: string; reason: string }
  | { type: 'ResumeStrategy'; strategyId: string }
  | { type: 'RetireStrategy'; strategyId: string; reason: string }
  // From the approval flow:
  | { type: 'ApproveActivation'; strategyId: string; requestId: string; approvers: Party[] }
  | { type: 'PromoteToLive'; strategyId: string; requestId: string; approvers: Party[] }
  | { type: 'ApplyParameterChange'; strategyId: string; requestId: string; approvers: Party[] }
  | {
      type: 'DeclineRequest';
      strategyId: string;
      requestId: string;
      outcome: Declined;
      reason: string;
    };

export interface Strategy extends StrategyDefinition {
  status: StrategyStatus;
  strategyId: string;
  owner: Party;
  parameterVersion: number;
  /** Where `resume` returns to. */
  pausedFrom: 'paper' | 'live' | null;
  /** Open approval requests about this strategy, by what they ask for. */
  pending: {
    activation: string | null;
    promotion: string | null;
    parameterChange: { requestId: string; parameters: JsonObject } | null;
  };
}

export type StrategyState = { status: 'none' } | Strategy;

/** The commands a user may send in each state (the approval flow's are not listed). */
export const ALLOWED_COMMANDS: Readonly<Record<StrategyStatus, readonly string[]>> = {
  draft: ['edit', 'submit', 'retire'],
  in_review: ['retire'],
  approved: ['start_paper', 'change_parameters', 'retire'],
  paper: ['request_live', 'pause', 'change_parameters', 'retire'],
  live: ['pause', 'change_parameters', 'retire'],
  paused: ['resume', 'change_parameters', 'retire'],
  retired: [],
};

const USER_COMMAND: Partial<Record<StrategyCommand['type'], string>> = {
  EditStrategy: 'edit',
  SubmitForReview: 'submit',
  StartPaperTrading: 'start_paper',
  RequestPromotion: 'request_live',
  RequestParameterChange: 'change_parameters',
  ApplyParametersUnderStandingApproval: 'change_parameters',
  PauseStrategy: 'pause',
  ResumeStrategy: 'resume',
  RetireStrategy: 'retire',
};

const refuse = (code: string, message: string, details: Record<string, unknown> = {}): never => {
  throw new QcatError(code, message, details);
};

function existing(state: StrategyState, strategyId: string): Strategy {
  if (state.status === 'none')
    refuse('STRATEGY_NOT_FOUND', `strategy ${strategyId} does not exist`);
  return state as Strategy;
}

/** The strategy, if `command` is allowed in its state; else the refusal naming what is. */
function allowed(state: StrategyState, command: StrategyCommand): Strategy {
  const strategy = existing(state, command.strategyId);
  const name = USER_COMMAND[command.type] ?? command.type;
  const permitted = ALLOWED_COMMANDS[strategy.status];
  if (!permitted.includes(name)) {
    refuse(
      'STRATEGY_TRANSITION_NOT_ALLOWED',
      `cannot ${name} strategy ${strategy.strategyId}: it is ${strategy.status}; allowed: ${
        permitted.length > 0 ? permitted.join(', ') : 'nothing (retired is final)'
      }`,
      { currentState: strategy.status, allowedCommands: [...permitted] },
    );
  }
  return strategy;
}

const party = z.object({ id: z.string(), role: z.enum(ROLES) });
const ref = { strategyId: z.string() };
const json = z.record(z.string(), z.json());
const definition = {
  name: z.string(),
  description: z.string(),
  kind: z.string(),
  symbols: z.array(z.string()),
  timeframe: z.string(),
  parameters: json,
  capitalRequest: z.number(),
};
const decline = z.object({
  ...ref,
  requestId: z.string(),
  outcome: z.enum(['rejected', 'withdrawn', 'expired', 'lapsed']),
  reason: z.string(),
});
const mode = z.enum(['paper', 'live']);

const strategyEvent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('StrategyCreated'),
    data: z.object({ ...ref, ...definition, owner: party, parameterVersion: z.literal(1) }),
  }),
  z.object({
    type: z.literal('StrategyEdited'),
    data: z.object({ ...ref, changes: z.object(definition).partial() }),
  }),
  z.object({
    type: z.literal('StrategySubmittedForReview'),
    data: z.object({ ...ref, requestId: z.string(), requestedBy: party }),
  }),
  z.object({
    type: z.literal('StrategyApproved'),
    data: z.object({ ...ref, requestId: z.string(), approvers: z.array(party) }),
  }),
  z.object({ type: z.literal('StrategyActivationDeclined'), data: decline }),
  z.object({ type: z.literal('StrategyPaperTradingStarted'), data: z.object(ref) }),
  z.object({
    type: z.literal('StrategyPromotionRequested'),
    data: z.object({ ...ref, requestId: z.string(), requestedBy: party }),
  }),
  z.object({
    type: z.literal('StrategyPromotedToLive'),
    data: z.object({ ...ref, requestId: z.string(), approvers: z.array(party) }),
  }),
  z.object({ type: z.literal('StrategyPromotionDeclined'), data: decline }),
  z.object({
    type: z.literal('StrategyParameterChangeRequested'),
    data: z.object({
      ...ref,
      requestId: z.string(),
      requestedBy: party,
      parameters: json,
      fromVersion: z.number(),
    }),
  }),
  z.object({
    type: z.literal('StrategyParametersChanged'),
    data: z.object({
      ...ref,
      requestId: z.string(),
      version: z.number(),
      parameters: json,
      approvers: z.array(party),
      authority: z
        .object({
          type: z.literal('standing_approval'),
          standingApprovalId: z.string(),
          maxRelativeChange: z.number(),
          grantedBy: z.array(party),
          optimizationId: z.string(),
        })
        .optional(),
      appliedBy: party.optional(),
    }),
  }),
  z.object({ type: z.literal('StrategyParameterChangeDeclined'), data: decline }),
  z.object({
    type: z.literal('StrategyPaused'),
    data: z.object({ ...ref, reason: z.string(), from: mode }),
  }),
  z.object({ type: z.literal('StrategyResumed'), data: z.object({ ...ref, to: mode }) }),
  z.object({
    type: z.literal('StrategyRetired'),
    data: z.object({
      ...ref,
      reason: z.string(),
      from: z.enum(STRATEGY_STATES),
      openRequests: z.array(z.string()),
    }),
  }),
]);

/** Checks a definition's own rules (the kind's parameter schema included); defaults filled in. */
export function checkDefinition(definition: StrategyDefinition): StrategyDefinition {
  if (!(TIMEFRAMES as readonly string[]).includes(definition.timeframe)) {
    throw new ValidationError(
      'INVALID_TIMEFRAME',
      `unknown timeframe '${definition.timeframe}'; known: ${TIMEFRAMES.join(', ')}`,
    );
  }
  return { ...definition, parameters: validateParameters(definition.kind, definition.parameters) };
}

const openRequests = (strategy: Strategy): string[] =>
  [
    strategy.pending.activation,
    strategy.pending.promotion,
    strategy.pending.parameterChange?.requestId ?? null,
  ].filter((id): id is string => id !== null);

/** An approval outcome for a request this strategy no longer waits for changes nothing. */
const awaits = (strategy: Strategy, requestId: string): boolean =>
  openRequests(strategy).includes(requestId);

const clearPending = (pending: Strategy['pending'], requestId: string): Strategy['pending'] => ({
  activation: pending.activation === requestId ? null : pending.activation,
  promotion: pending.promotion === requestId ? null : pending.promotion,
  parameterChange:
    pending.parameterChange?.requestId === requestId ? null : pending.parameterChange,
});

/** An edit of the definition: only what really changed is recorded, and no change writes nothing. */
function edit(
  command: Extract<StrategyCommand, { type: 'EditStrategy' }>,
  state: StrategyState,
): StrategyEvent[] {
  const { strategyId } = command;
  const strategy = allowed(state, command);
  const {
    status: _s,
    strategyId: _i,
    owner: _o,
    pending: _p,
    pausedFrom: _f,
    ...current
  } = strategy;
  const { parameterVersion: _v, ...definition } = current;
  const next = checkDefinition({ ...definition, ...command.changes });
  // Only what really changed is recorded; an edit that changes nothing writes nothing.
  const changes: Edits = {};
  for (const key of Object.keys(command.changes) as (keyof StrategyDefinition)[]) {
    if (JSON.stringify(next[key]) !== JSON.stringify(definition[key]))
      Object.assign(changes, { [key]: next[key] });
  }
  if (Object.keys(changes).length === 0) return [];
  return [{ type: 'StrategyEdited', data: { strategyId, changes } }];
}

/**
 * The new parameters of a parameter change, checked: no change already awaiting approval, computed
 * from the live version (when the command says which), valid for the kind, and not the live ones.
 */
function changedParameters(
  strategy: ReturnType<typeof allowed>,
  strategyId: string,
  requested: Parameters<typeof validateParameters>[1],
  fromVersion?: number,
): ReturnType<typeof validateParameters> {
  const open = strategy.pending.parameterChange;
  if (open !== null)
    refuse(
      'REQUEST_ALREADY_OPEN',
      `strategy ${strategyId} already awaits approval ${open.requestId} of a parameter change`,
      { openRequestId: open.requestId },
    );
  if (fromVersion !== undefined && fromVersion !== strategy.parameterVersion)
    refuse(
      'PARAMETER_VERSION_MOVED',
      `the change was computed from version ${fromVersion}; version ${strategy.parameterVersion} is live`,
    );
  const parameters = validateParameters(strategy.kind, requested);
  if (JSON.stringify(parameters) === JSON.stringify(strategy.parameters))
    refuse(
      'PARAMETERS_UNCHANGED',
      `these are the parameters of version ${strategy.parameterVersion.toString()} already`,
    );
  return parameters;
}

/** New parameters of a running strategy, to be approved; one request open at a time. */
function requestParameterChange(
  command: Extract<StrategyCommand, { type: 'RequestParameterChange' }>,
  state: StrategyState,
): StrategyEvent[] {
  const { strategyId } = command;
  const strategy = allowed(state, command);
  const parameters = changedParameters(strategy, strategyId, command.parameters);
  return [
    {
      type: 'StrategyParameterChangeRequested',
      data: {
        strategyId,
        requestId: command.requestId,
        requestedBy: command.by,
        parameters,
        fromVersion: strategy.parameterVersion,
      },
    },
  ];
}

/**
 * New parameters applied at once under a standing approval: computed from the live version, and
 * within the approval's bounds.
 */
function applyUnderStandingApproval(
  command: Extract<StrategyCommand, { type: 'ApplyParametersUnderStandingApproval' }>,
  state: StrategyState,
): StrategyEvent[] {
  const { strategyId } = command;
  const strategy = allowed(state, command);
  const parameters = changedParameters(
    strategy,
    strategyId,
    command.parameters,
    command.fromVersion,
  );
  const beyond = outOfBounds(strategy.parameters, parameters, command.authority.maxRelativeChange);
  if (beyond.length > 0)
    refuse('OUTSIDE_STANDING_APPROVAL', beyond.join('; '), { reasons: beyond });
  return [
    {
      type: 'StrategyParametersChanged',
      data: {
        strategyId,
        requestId: command.changeId,
        version: strategy.parameterVersion + 1,
        parameters,
        approvers: [],
        authority: command.authority,
        appliedBy: command.by,
      },
    },
  ];
}

/** Retired, with the requests it leaves open. */
function retire(
  command: Extract<StrategyCommand, { type: 'RetireStrategy' }>,
  state: StrategyState,
): StrategyEvent[] {
  const { strategyId } = command;
  const strategy = allowed(state, command);
  return [
    {
      type: 'StrategyRetired',
      data: {
        strategyId,
        reason: command.reason,
        from: strategy.status,
        openRequests: openRequests(strategy),
      },
    },
  ];
}

/** The approved promotion: live if the strategy is still paper trading, else lapsed. */
function promote(
  command: Extract<StrategyCommand, { type: 'PromoteToLive' }>,
  state: StrategyState,
): StrategyEvent[] {
  const { strategyId } = command;
  const strategy = existing(state, strategyId);
  if (strategy.pending.promotion !== command.requestId) return [];
  if (strategy.status !== 'paper') {
    return [
      {
        type: 'StrategyPromotionDeclined',
        data: {
          strategyId,
          requestId: command.requestId,
          outcome: 'lapsed',
          reason: `approved, but the strategy is ${strategy.status} now, not paper`,
        },
      },
    ];
  }
  return [
    {
      type: 'StrategyPromotedToLive',
      data: { strategyId, requestId: command.requestId, approvers: command.approvers },
    },
  ];
}

/** The approved parameter change of the open request: the next version. */
function applyParameterChange(
  command: Extract<StrategyCommand, { type: 'ApplyParameterChange' }>,
  state: StrategyState,
): StrategyEvent[] {
  const { strategyId } = command;
  const strategy = existing(state, strategyId);
  const open = strategy.pending.parameterChange;
  if (open?.requestId !== command.requestId) return [];
  return [
    {
      type: 'StrategyParametersChanged',
      data: {
        strategyId,
        requestId: command.requestId,
        version: strategy.parameterVersion + 1,
        parameters: open.parameters,
        approvers: command.approvers,
      },
    },
  ];
}

/** A request the strategy awaits declined (rejected, withdrawn, expired): its own event type. */
function declineRequest(
  command: Extract<StrategyCommand, { type: 'DeclineRequest' }>,
  state: StrategyState,
): StrategyEvent[] {
  const { strategyId } = command;
  const strategy = existing(state, strategyId);
  if (!awaits(strategy, command.requestId)) return [];
  const data = {
    strategyId,
    requestId: command.requestId,
    outcome: command.outcome,
    reason: command.reason,
  };
  if (strategy.pending.activation === command.requestId)
    return [{ type: 'StrategyActivationDeclined', data }];
  if (strategy.pending.promotion === command.requestId)
    return [{ type: 'StrategyPromotionDeclined', data }];
  return [{ type: 'StrategyParameterChangeDeclined', data }];
}

export const strategies: Decider<StrategyState, StrategyCommand, StrategyEvent> = {
  initialState: () => ({ status: 'none' }),

  evolve: (state, event) => {
    if (event.type === 'StrategyCreated') {
      const { owner, parameterVersion, strategyId, ...definition } = event.data;
      return {
        ...definition,
        strategyId,
        owner,
        parameterVersion,
        status: 'draft',
        pausedFrom: null,
        pending: { activation: null, promotion: null, parameterChange: null },
      };
    }
    if (state.status === 'none') return state;
    switch (event.type) {
      case 'StrategyEdited':
        return { ...state, ...event.data.changes };
      case 'StrategySubmittedForReview':
        return {
          ...state,
          status: 'in_review',
          pending: { ...state.pending, activation: event.data.requestId },
        };
      case 'StrategyApproved':
        return {
          ...state,
          status: 'approved',
          pending: clearPending(state.pending, event.data.requestId),
        };
      case 'StrategyActivationDeclined':
        return {
          ...state,
          status: 'draft',
          pending: clearPending(state.pending, event.data.requestId),
        };
      case 'StrategyPaperTradingStarted':
        return { ...state, status: 'paper' };
      case 'StrategyPromotionRequested':
        return { ...state, pending: { ...state.pending, promotion: event.data.requestId } };
      case 'StrategyPromotedToLive':
        return {
          ...state,
          status: 'live',
          pending: clearPending(state.pending, event.data.requestId),
        };
      case 'StrategyParameterChangeRequested':
        return {
          ...state,
          pending: {
            ...state.pending,
            parameterChange: {
              requestId: event.data.requestId,
              parameters: event.data.parameters,
            },
          },
        };
      case 'StrategyParametersChanged':
        return {
          ...state,
          parameters: event.data.parameters,
          parameterVersion: event.data.version,
          pending: clearPending(state.pending, event.data.requestId),
        };
      case 'StrategyPromotionDeclined':
      case 'StrategyParameterChangeDeclined':
        return { ...state, pending: clearPending(state.pending, event.data.requestId) };
      case 'StrategyPaused':
        return { ...state, status: 'paused', pausedFrom: event.data.from };
      case 'StrategyResumed':
        return { ...state, status: event.data.to, pausedFrom: null };
      case 'StrategyRetired':
        return {
          ...state,
          status: 'retired',
          pausedFrom: null,
          pending: { activation: null, promotion: null, parameterChange: null },
        };
    }
  },

  decide: (command, state) => {
    const { strategyId } = command;
    switch (command.type) {
      case 'CreateStrategy': {
        if (state.status !== 'none')
          refuse('STRATEGY_EXISTS', `strategy ${strategyId} already exists`);
        const { type: _type, owner, strategyId: _id, ...definition } = command;
        return [
          {
            type: 'StrategyCreated',
            data: { strategyId, ...checkDefinition(definition), owner, parameterVersion: 1 },
          },
        ];
      }
      case 'EditStrategy':
        return edit(command, state);
      case 'SubmitForReview':
        allowed(state, command);
        return [
          {
            type: 'StrategySubmittedForReview',
            data: { strategyId, requestId: command.requestId, requestedBy: command.by },
          },
        ];
      case 'StartPaperTrading':
        allowed(state, command);
        return [{ type: 'StrategyPaperTradingStarted', data: { strategyId } }];
      case 'RequestPromotion': {
        const strategy = allowed(state, command);
        if (strategy.pending.promotion !== null)
          refuse(
            'REQUEST_ALREADY_OPEN',
            `strategy ${strategyId} already awaits approval ${strategy.pending.promotion} to go live`,
            { openRequestId: strategy.pending.promotion },
          );
        return [
          {
            type: 'StrategyPromotionRequested',
            data: { strategyId, requestId: command.requestId, requestedBy: command.by },
          },
        ];
      }
      case 'RequestParameterChange':
        return requestParameterChange(command, state);
      case 'ApplyParametersUnderStandingApproval':
        return applyUnderStandingApproval(command, state);
      case 'PauseStrategy': {
        const strategy = allowed(state, command);
        const from = strategy.status === 'live' ? 'live' : 'paper';
        return [{ type: 'StrategyPaused', data: { strategyId, reason: command.reason, from } }];
      }
      case 'ResumeStrategy': {
        const strategy = allowed(state, command);
        return [
          { type: 'StrategyResumed', data: { strategyId, to: strategy.pausedFrom ?? 'paper' } },
        ];
      }
      case 'RetireStrategy':
        return retire(command, state);
      case 'ApproveActivation': {
        const strategy = existing(state, strategyId);
        if (strategy.pending.activation !== command.requestId) return [];
        return [
          {
            type: 'StrategyApproved',
            data: { strategyId, requestId: command.requestId, approvers: command.approvers },
          },
        ];
      }
      case 'PromoteToLive':
        return promote(command, state);
      case 'ApplyParameterChange':
        return applyParameterChange(command, state);
      case 'DeclineRequest':
        return declineRequest(command, state);
    }
  },

  parseEvent: (event) => strategyEvent.parse(event),
};
