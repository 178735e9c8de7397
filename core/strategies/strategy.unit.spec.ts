import { describe, expect, it } from 'vitest';
import { given } from '../../test/support/given-when-then.js';
import type { Party } from '../approvals/approval.js';
import {
  ALLOWED_COMMANDS,
  STRATEGY_STATES,
  strategies,
  type StrategyCommand,
  type StrategyEvent,
  type StrategyStatus,
} from './strategy.js';

const owner: Party = { id: 'apikey:trader1', role: 'trader' };
const risk: Party = { id: 'apikey:risk1', role: 'risk_officer' };
const admin: Party = { id: 'apikey:admin1', role: 'admin' };
const strategyId = 's1';

const definition = {
  name: 'BTC trend',
  description: '',
  kind: 'sma_crossover',
  symbols: ['BTCUSDT'],
  timeframe: '1h',
  parameters: { fastPeriod: 10, slowPeriod: 30, positionFraction: 0.5 },
  capitalRequest: 10_000,
};

const created: StrategyEvent = {
  type: 'StrategyCreated',
  data: { strategyId, ...definition, owner, parameterVersion: 1 },
};
const submitted: StrategyEvent = {
  type: 'StrategySubmittedForReview',
  data: { strategyId, requestId: 'r1', requestedBy: owner },
};
const approved: StrategyEvent = {
  type: 'StrategyApproved',
  data: { strategyId, requestId: 'r1', approvers: [risk] },
};
const paper: StrategyEvent = { type: 'StrategyPaperTradingStarted', data: { strategyId } };
const promotionRequested: StrategyEvent = {
  type: 'StrategyPromotionRequested',
  data: { strategyId, requestId: 'r2', requestedBy: owner },
};
const live: StrategyEvent = {
  type: 'StrategyPromotedToLive',
  data: { strategyId, requestId: 'r2', approvers: [admin, risk] },
};
const paused: StrategyEvent = {
  type: 'StrategyPaused',
  data: { strategyId, reason: 'maintenance', from: 'live' },
};
const retired: StrategyEvent = {
  type: 'StrategyRetired',
  data: { strategyId, reason: 'done', from: 'live', openRequests: [] },
};

/** The shortest history that leaves the strategy in each state. */
const HISTORY: Record<StrategyStatus, StrategyEvent[]> = {
  draft: [created],
  in_review: [created, submitted],
  approved: [created, submitted, approved],
  paper: [created, submitted, approved, paper],
  live: [created, submitted, approved, paper, promotionRequested, live],
  paused: [created, submitted, approved, paper, promotionRequested, live, paused],
  retired: [created, submitted, approved, paper, promotionRequested, live, retired],
};

/** One user command per name in ALLOWED_COMMANDS. */
const USER_COMMANDS: Record<string, StrategyCommand> = {
  edit: { type: 'EditStrategy', strategyId, changes: { name: 'Renamed' } },
  submit: { type: 'SubmitForReview', strategyId, requestId: 'r9', by: owner },
  start_paper: { type: 'StartPaperTrading', strategyId },
  request_live: { type: 'RequestPromotion', strategyId, requestId: 'r9', by: owner },
  change_parameters: {
    type: 'RequestParameterChange',
    strategyId,
    requestId: 'r9',
    by: owner,
    parameters: { fastPeriod: 12, slowPeriod: 30 },
  },
  pause: { type: 'PauseStrategy', strategyId, reason: 'x' },
  resume: { type: 'ResumeStrategy', strategyId },
  retire: { type: 'RetireStrategy', strategyId, reason: 'x' },
};

describe('strategy: create and edit', () => {
  it('given nothing, when created, then the parameters are validated with defaults filled in', () => {
    given(strategies, [])
      .when({
        type: 'CreateStrategy',
        strategyId,
        owner,
        ...definition,
        parameters: { fastPeriod: 10, slowPeriod: 30 },
      })
      .then([created]);
  });

  it('refuses parameters outside the bounds of the kind, naming every field', () => {
    const error = given(strategies, [])
      .when({
        type: 'CreateStrategy',
        strategyId,
        owner,
        ...definition,
        parameters: { fastPeriod: 1, slowPeriod: 'x', extra: true },
      })
      .thenRefuses('INVALID_PARAMETERS', /parameters\.fastPeriod/);
    const errors = error.details['errors'] as { path: string }[];
    expect(errors.map((e) => e.path).sort()).toEqual([
      'parameters',
      'parameters.fastPeriod',
      'parameters.slowPeriod',
    ]);
  });

  it('refuses a fast period not below the slow one', () => {
    given(strategies, [])
      .when({
        type: 'CreateStrategy',
        strategyId,
        owner,
        ...definition,
        parameters: { fastPeriod: 30, slowPeriod: 30 },
      })
      .thenRefuses('INVALID_PARAMETERS', /fastPeriod must be smaller than slowPeriod/);
  });

  it('refuses an unknown kind and an unknown timeframe', () => {
    given(strategies, [])
      .when({ type: 'CreateStrategy', strategyId, owner, ...definition, kind: 'martingale' })
      .thenRefuses('UNKNOWN_STRATEGY_KIND', /known: sma_crossover/);
    given(strategies, [])
      .when({ type: 'CreateStrategy', strategyId, owner, ...definition, timeframe: '7m' })
      .thenRefuses('INVALID_TIMEFRAME');
  });

  it('refuses creating it twice', () => {
    given(strategies, [created])
      .when({ type: 'CreateStrategy', strategyId, owner, ...definition })
      .thenRefuses('STRATEGY_EXISTS');
  });

  it('given a draft, when edited, then only what changed is recorded', () => {
    given(strategies, [created])
      .when({
        type: 'EditStrategy',
        strategyId,
        changes: { name: 'BTC trend', symbols: ['BTCUSDT', 'ETHUSDT'] },
      })
      .then([
        {
          type: 'StrategyEdited',
          data: { strategyId, changes: { symbols: ['BTCUSDT', 'ETHUSDT'] } },
        },
      ]);
  });

  it('given a draft, when an edit changes nothing, then nothing is written', () => {
    given(strategies, [created])
      .when({ type: 'EditStrategy', strategyId, changes: { name: 'BTC trend' } })
      .then([]);
  });

  it('refuses edited parameters that break the kind', () => {
    given(strategies, [created])
      .when({ type: 'EditStrategy', strategyId, changes: { parameters: { fastPeriod: 99 } } })
      .thenRefuses('INVALID_PARAMETERS');
  });

  it('refuses commands on a strategy that does not exist', () => {
    given(strategies, []).when(USER_COMMANDS['pause']!).thenRefuses('STRATEGY_NOT_FOUND');
  });
});

describe('strategy: every state allows exactly its commands', () => {
  for (const status of STRATEGY_STATES) {
    for (const [name, command] of Object.entries(USER_COMMANDS)) {
      const allowed = ALLOWED_COMMANDS[status].includes(name);
      it(`${status}: ${name} is ${allowed ? 'allowed' : 'refused, naming the state and the allowed commands'}`, () => {
        const when = given(strategies, HISTORY[status]).when(command);
        if (allowed) {
          expect(strategies.decide(command, given(strategies, HISTORY[status]).state)).toHaveLength(
            1,
          );
        } else {
          const error = when.thenRefuses(
            'STRATEGY_TRANSITION_NOT_ALLOWED',
            new RegExp(`it is ${status}`),
          );
          expect(error.details).toEqual({
            currentState: status,
            allowedCommands: ALLOWED_COMMANDS[status],
          });
        }
      });
    }
  }
});

describe('strategy: lifecycle transitions', () => {
  it('draft → in review on submit, naming the approval request', () => {
    given(strategies, HISTORY.draft)
      .when(USER_COMMANDS['submit']!)
      .then([
        {
          type: 'StrategySubmittedForReview',
          data: { strategyId, requestId: 'r9', requestedBy: owner },
        },
      ]);
  });

  it('in review → approved when its request is approved', () => {
    given(strategies, HISTORY.in_review)
      .when({ type: 'ApproveActivation', strategyId, requestId: 'r1', approvers: [risk] })
      .then([approved]);
  });

  it('an approval of a request the strategy no longer awaits changes nothing', () => {
    given(strategies, HISTORY.approved)
      .when({ type: 'ApproveActivation', strategyId, requestId: 'r1', approvers: [risk] })
      .then([]);
  });

  it('in review → draft when its request is rejected', () => {
    const events = given(strategies, HISTORY.in_review)
      .when({
        type: 'DeclineRequest',
        strategyId,
        requestId: 'r1',
        outcome: 'rejected',
        reason: 'no',
      })
      .then([
        {
          type: 'StrategyActivationDeclined',
          data: { strategyId, requestId: 'r1', outcome: 'rejected', reason: 'no' },
        },
      ]);
    const state = given(strategies, [...HISTORY.in_review, ...events]).state;
    expect(state.status).toBe('draft');
  });

  it('approved → paper', () => {
    given(strategies, HISTORY.approved).when(USER_COMMANDS['start_paper']!).then([paper]);
  });

  it('paper: a promotion request stays paper until approved, and only one is open', () => {
    const events = given(strategies, HISTORY.paper)
      .when({ type: 'RequestPromotion', strategyId, requestId: 'r2', by: owner })
      .then([promotionRequested]);
    const pending = [...HISTORY.paper, ...events];
    expect(given(strategies, pending).state.status).toBe('paper');
    given(strategies, pending)
      .when({ type: 'RequestPromotion', strategyId, requestId: 'r3', by: owner })
      .thenRefuses('REQUEST_ALREADY_OPEN', /r2/);
  });

  it('paper → live when the promotion is approved', () => {
    given(strategies, [...HISTORY.paper, promotionRequested])
      .when({ type: 'PromoteToLive', strategyId, requestId: 'r2', approvers: [admin, risk] })
      .then([live]);
  });

  it('a promotion approved after the strategy was paused lapses', () => {
    given(strategies, [
      ...HISTORY.paper,
      promotionRequested,
      { type: 'StrategyPaused', data: { strategyId, reason: 'x', from: 'paper' } },
    ])
      .when({ type: 'PromoteToLive', strategyId, requestId: 'r2', approvers: [admin, risk] })
      .then([
        {
          type: 'StrategyPromotionDeclined',
          data: {
            strategyId,
            requestId: 'r2',
            outcome: 'lapsed',
            reason: 'approved, but the strategy is paused now, not paper',
          },
        },
      ]);
  });

  it('a declined promotion leaves it paper and lets a new one be requested', () => {
    const declined: StrategyEvent = {
      type: 'StrategyPromotionDeclined',
      data: { strategyId, requestId: 'r2', outcome: 'expired', reason: 'expired' },
    };
    given(strategies, [...HISTORY.paper, promotionRequested])
      .when({
        type: 'DeclineRequest',
        strategyId,
        requestId: 'r2',
        outcome: 'expired',
        reason: 'expired',
      })
      .then([declined]);
    given(strategies, [...HISTORY.paper, promotionRequested, declined])
      .when({ type: 'RequestPromotion', strategyId, requestId: 'r3', by: owner })
      .then([
        {
          type: 'StrategyPromotionRequested',
          data: { strategyId, requestId: 'r3', requestedBy: owner },
        },
      ]);
  });

  it('live → paused → live', () => {
    given(strategies, HISTORY.live)
      .when({ type: 'PauseStrategy', strategyId, reason: 'maintenance' })
      .then([paused]);
    given(strategies, HISTORY.paused)
      .when({ type: 'ResumeStrategy', strategyId })
      .then([{ type: 'StrategyResumed', data: { strategyId, to: 'live' } }]);
  });

  it('paper → paused → paper', () => {
    const pausedPaper: StrategyEvent = {
      type: 'StrategyPaused',
      data: { strategyId, reason: 'x', from: 'paper' },
    };
    given(strategies, HISTORY.paper)
      .when({ type: 'PauseStrategy', strategyId, reason: 'x' })
      .then([pausedPaper]);
    given(strategies, [...HISTORY.paper, pausedPaper])
      .when({ type: 'ResumeStrategy', strategyId })
      .then([{ type: 'StrategyResumed', data: { strategyId, to: 'paper' } }]);
  });

  it('retiring names the approval requests still open, so they are withdrawn', () => {
    given(strategies, [...HISTORY.paper, promotionRequested])
      .when({ type: 'RetireStrategy', strategyId, reason: 'obsolete' })
      .then([
        {
          type: 'StrategyRetired',
          data: { strategyId, reason: 'obsolete', from: 'paper', openRequests: ['r2'] },
        },
      ]);
  });

  it('retired is final', () => {
    given(strategies, HISTORY.retired)
      .when({ type: 'ResumeStrategy', strategyId })
      .thenRefuses('STRATEGY_TRANSITION_NOT_ALLOWED', /retired is final/);
  });
});

describe('strategy: versioned parameters', () => {
  const requestedChange: StrategyEvent = {
    type: 'StrategyParameterChangeRequested',
    data: {
      strategyId,
      requestId: 'r5',
      requestedBy: owner,
      parameters: { fastPeriod: 12, slowPeriod: 30, positionFraction: 0.5 },
      fromVersion: 1,
    },
  };

  it('live: a parameter change is a request; the parameters stay as they were', () => {
    const events = given(strategies, HISTORY.live)
      .when({
        type: 'RequestParameterChange',
        strategyId,
        requestId: 'r5',
        by: owner,
        parameters: { fastPeriod: 12, slowPeriod: 30 },
      })
      .then([requestedChange]);
    const state = given(strategies, [...HISTORY.live, ...events]).state;
    if (state.status === 'none') throw new Error('expected a strategy');
    expect(state.parameters).toEqual(definition.parameters);
    expect(state.parameterVersion).toBe(1);
  });

  it('when the change is approved, the set becomes version 2', () => {
    const events = given(strategies, [...HISTORY.live, requestedChange])
      .when({ type: 'ApplyParameterChange', strategyId, requestId: 'r5', approvers: [risk] })
      .then([
        {
          type: 'StrategyParametersChanged',
          data: {
            strategyId,
            requestId: 'r5',
            version: 2,
            parameters: { fastPeriod: 12, slowPeriod: 30, positionFraction: 0.5 },
            approvers: [risk],
          },
        },
      ]);
    const state = given(strategies, [...HISTORY.live, requestedChange, ...events]).state;
    if (state.status === 'none') throw new Error('expected a strategy');
    expect(state.parameterVersion).toBe(2);
    expect(state.parameters['fastPeriod']).toBe(12);
  });

  it('refuses a second open change, and a change to the same parameters', () => {
    given(strategies, [...HISTORY.live, requestedChange])
      .when({
        type: 'RequestParameterChange',
        strategyId,
        requestId: 'r6',
        by: owner,
        parameters: { fastPeriod: 15, slowPeriod: 30 },
      })
      .thenRefuses('REQUEST_ALREADY_OPEN');
    given(strategies, HISTORY.live)
      .when({
        type: 'RequestParameterChange',
        strategyId,
        requestId: 'r6',
        by: owner,
        parameters: definition.parameters,
      })
      .thenRefuses('PARAMETERS_UNCHANGED');
  });

  it('a rejected change leaves version 1', () => {
    given(strategies, [...HISTORY.live, requestedChange])
      .when({
        type: 'DeclineRequest',
        strategyId,
        requestId: 'r5',
        outcome: 'rejected',
        reason: 'no',
      })
      .then([
        {
          type: 'StrategyParameterChangeDeclined',
          data: { strategyId, requestId: 'r5', outcome: 'rejected', reason: 'no' },
        },
      ]);
  });
});
