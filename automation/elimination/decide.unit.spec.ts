import { describe, expect, it } from 'vitest';
import {
  elimination,
  type EliminationFigures,
  type EliminationState,
} from '../../core/strategies/elimination.js';
import { breachesOf, eliminationDecision, figuresOf, MIN_DAYS, windowStart } from './decide.js';
import { decisionIntents, retirementRequestId } from './manager.js';

const T = {
  sharpeBelow: 0.5,
  drawdownAbove: 0.1,
  losingWeeksInARow: 4,
  windowDays: 30,
  coolingDays: 7,
};
const NOW = new Date('2026-03-01T00:30:00.000Z');
const watching: EliminationState = elimination.initialState();
const suspended = (at: string): EliminationState => ({
  ...watching,
  status: 'suspended',
  suspendedAt: at,
  breaches: ['DRAWDOWN_ABOVE: drawdown=0.2 > 0.1'],
});
const days = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    new Date(Date.UTC(2026, 0, 1 + i)).toISOString().slice(0, 10),
  );
/** Equity from 100 following `steps` (daily multipliers). */
const path = (steps: number[]) => steps.reduce((e, m) => [...e, (e.at(-1) as number) * m], [100]);
const fig = (over: Partial<EliminationFigures> = {}): EliminationFigures => ({
  from: '2026-01-31',
  to: '2026-03-01',
  days: 30,
  sharpe: 1.2,
  drawdown: 0.03,
  losingWeeksInARow: 0,
  ...over,
});
const decide = (
  record: EliminationState,
  figures: EliminationFigures | null,
  status = 'paper',
  now = NOW,
) =>
  eliminationDecision({
    strategy: { strategyId: 's1', status },
    record,
    figures,
    thresholds: T,
    now,
  });

describe('elimination figures', () => {
  it('a steady gain: high Sharpe, no drawdown, no losing week', () => {
    const equity = path(Array.from({ length: 28 }, (_, i) => (i % 2 ? 1.004 : 1.001)));
    const f = figuresOf(equity, days(28));
    expect(f.days).toBe(28);
    expect(f.sharpe).toBeGreaterThan(5);
    expect(f.drawdown).toBe(0);
    expect(f.losingWeeksInARow).toBe(0);
    expect(f.from).toBe('2026-01-01');
    expect(f.to).toBe('2026-01-28');
  });

  it('a 20% fall from the peak is a drawdown of 0.2; four losing weeks at the end count 4', () => {
    const equity = path([...Array<number>(7).fill(1.02), ...Array<number>(28).fill(0.99)]);
    const f = figuresOf(equity, days(35));
    expect(f.drawdown).toBeCloseTo(1 - 0.99 ** 28, 5);
    expect(f.losingWeeksInARow).toBe(4);
    expect(f.sharpe).toBeLessThan(0);
  });

  it('a flat series has no Sharpe (null), never a division by zero', () => {
    expect(figuresOf(path(Array<number>(10).fill(1)), days(10)).sharpe).toBeNull();
  });

  it('each breach is named with its figures', () => {
    expect(breachesOf(fig({ sharpe: 0.2, drawdown: 0.15, losingWeeksInARow: 4 }), T)).toEqual([
      'SHARPE_BELOW: sharpe=0.2 < 0.5 over 30 days',
      'DRAWDOWN_ABOVE: drawdown=0.15 > 0.1',
      'LOSING_WEEKS: 4 losing weeks in a row (limit 4)',
    ]);
    expect(breachesOf(fig(), T)).toEqual([]);
  });

  it('the window starts at the day the strategy is watched from, when later', () => {
    expect(windowStart(watching, 30, NOW).toISOString()).toBe('2026-01-30T00:30:00.000Z');
    expect(windowStart({ ...watching, watchFrom: '2026-02-20' }, 30, NOW).toISOString()).toBe(
      '2026-02-20T00:00:00.000Z',
    );
  });
});

describe('elimination decisions (given / when / then)', () => {
  it('given a trading strategy, when its Sharpe falls below the policy, then it is suspended naming why', () => {
    expect(decide(watching, fig({ sharpe: 0.1 }))).toEqual({
      type: 'suspend',
      figures: fig({ sharpe: 0.1 }),
      breaches: ['SHARPE_BELOW: sharpe=0.1 < 0.5 over 30 days'],
    });
  });

  it('given a trading strategy, when its drawdown or its losing weeks breach, then it is suspended', () => {
    expect(decide(watching, fig({ drawdown: 0.12 }))?.type).toBe('suspend');
    expect(decide(watching, fig({ losingWeeksInARow: 5 }))?.type).toBe('suspend');
  });

  it('given healthy figures, too few days, no figures or a paused strategy, then nothing', () => {
    expect(decide(watching, fig())).toBeNull();
    expect(decide(watching, fig({ sharpe: -1, days: MIN_DAYS - 1 }))).toBeNull();
    expect(decide(watching, null)).toBeNull();
    expect(decide(watching, fig({ sharpe: -1 }), 'paused')).toBeNull();
  });

  it('given a suspension younger than the cooling period, then nothing yet', () => {
    expect(
      decide(suspended('2026-02-25T00:30:00.000Z'), fig({ drawdown: 0.3 }), 'paused'),
    ).toBeNull();
  });

  it('given the cooling period over and the figures still breaching, then retirement is proposed', () => {
    const decision = decide(
      suspended('2026-02-20T00:30:00.000Z'),
      fig({ drawdown: 0.3 }),
      'paused',
    );
    expect(decision).toMatchObject({
      type: 'propose_retirement',
      breaches: ['DRAWDOWN_ABOVE: drawdown=0.3 > 0.1'],
    });
  });

  it('given the cooling period over and the figures back within the policy, then it recovered', () => {
    expect(decide(suspended('2026-02-20T00:30:00.000Z'), fig(), 'paused')).toEqual({
      type: 'recover',
      figures: fig(),
    });
  });

  it('given a person resumed or retired it while suspended, then the suspension is cleared', () => {
    expect(
      decide(suspended('2026-02-27T00:00:00.000Z'), fig({ sharpe: -2 }), 'paper'),
    ).toMatchObject({
      type: 'clear',
      outcome: 'resumed',
    });
    expect(decide(suspended('2026-02-27T00:00:00.000Z'), null, 'retired')).toMatchObject({
      type: 'clear',
      outcome: 'retired',
    });
  });
});

describe('the commands of a decision', () => {
  const strategy = {
    strategyId: 's1',
    status: 'paper',
    kind: 'sma_crossover',
    parameters: {},
    symbols: ['BTCUSDT'],
    timeframe: '1h',
    capital: 10_000,
  };

  it('suspend: the record, a pause naming the breach, and a reduce-only close per open position; all gated by `elimination`', () => {
    const intents = decisionIntents(
      strategy,
      { type: 'suspend', figures: fig({ sharpe: 0.1 }), breaches: ['SHARPE_BELOW: x'] },
      [{ portfolioId: 'paper-1h', symbol: 'BTCUSDT', quantity: 0.5 }],
      { suspendedAt: null, requestId: null },
      NOW,
    );
    expect(intents.map((i) => [i.streamId, i.command['type'], i.key, i.capability])).toEqual([
      ['elimination-s1', 'Suspend', 'suspend', 'elimination'],
      ['strategy-s1', 'PauseStrategy', 'pause', 'elimination'],
      ['desk-paper-1h', 'RequestOrder', 'close:paper-1h:BTCUSDT', 'elimination'],
    ]);
    expect(intents[1]?.command['reason']).toMatch(
      /^elimination: SHARPE_BELOW: x \(2026-01-31\.\.2026-03-01\)$/,
    );
    expect(intents[2]?.command['order']).toMatchObject({
      side: 'sell',
      quantity: 0.5,
      type: 'market',
      reduceOnly: true,
      clientOrderId: 'm-elim-s1-BTCUSDT-2026-03-01',
    });
  });

  it('propose: the record and a four-eyes `strategy_retirement` request, its id derived from the suspension', () => {
    const intents = decisionIntents(
      strategy,
      {
        type: 'propose_retirement',
        figures: fig({ drawdown: 0.3 }),
        breaches: ['DRAWDOWN_ABOVE: y'],
      },
      [],
      { suspendedAt: '2026-02-20T00:30:00.000Z', requestId: null },
      NOW,
    );
    const requestId = retirementRequestId('s1', '2026-02-20T00:30:00.000Z');
    expect(intents.map((i) => i.streamId)).toEqual(['elimination-s1', `approval-${requestId}`]);
    expect(intents[1]?.command).toMatchObject({
      kind: 'strategy_retirement',
      subject: { type: 'strategy_retirement', id: 's1' },
      requester: { id: 'automation:elimination', role: 'analyst' },
    });
  });

  it('clear with a retirement request open: the record, then its withdrawal as the requester; none when no request is open', () => {
    const clear = { type: 'clear', outcome: 'resumed', reason: 'resumed by a person' } as const;
    const open = decisionIntents(strategy, clear, [], { suspendedAt: null, requestId: 'r1' }, NOW);
    expect(open.map((i) => [i.streamId, i.command['type'], i.key, i.capability])).toEqual([
      ['elimination-s1', 'ClearSuspension', 'clear', 'elimination'],
      ['approval-r1', 'WithdrawApproval', 'withdraw:r1', 'elimination'],
    ]);
    expect(open[1]?.command['by']).toEqual({ id: 'automation:elimination', role: 'analyst' });
    const none = decisionIntents(strategy, clear, [], { suspendedAt: null, requestId: null }, NOW);
    expect(none.map((i) => i.command['type'])).toEqual(['ClearSuspension']);
  });
});

describe('the elimination record (decider)', () => {
  const at = NOW.toISOString();
  const fold = (events: ReturnType<typeof elimination.decide>, state = watching) =>
    events.reduce((s, e) => elimination.evolve(s, e), state);

  it('one suspension at a time; a proposal only when suspended; retirement only with an approved request', () => {
    const s = fold(
      elimination.decide(
        { type: 'Suspend', strategyId: 's1', at, figures: fig(), breaches: ['B'] },
        watching,
      ),
    );
    expect(s.status).toBe('suspended');
    expect(() =>
      elimination.decide(
        { type: 'Suspend', strategyId: 's1', at, figures: fig(), breaches: ['B'] },
        s,
      ),
    ).toThrow(/suspended/);
    expect(() =>
      elimination.decide(
        {
          type: 'ProposeRetirement',
          strategyId: 's1',
          at,
          requestId: 'r1',
          figures: fig(),
          breaches: ['B'],
        },
        watching,
      ),
    ).toThrow(/only a suspended strategy/);
    const proposed = fold(
      elimination.decide(
        {
          type: 'ProposeRetirement',
          strategyId: 's1',
          at,
          requestId: 'r1',
          figures: fig(),
          breaches: ['B'],
        },
        s,
      ),
      s,
    );
    expect(() =>
      elimination.decide(
        { type: 'ConfirmRetirement', strategyId: 's1', at, requestId: 'r1', approvers: [] },
        proposed,
      ),
    ).toThrow();
    const retired = fold(
      elimination.decide(
        {
          type: 'ConfirmRetirement',
          strategyId: 's1',
          at,
          requestId: 'r1',
          approvers: [{ id: 'apikey:risk-2', role: 'risk_officer' }],
        },
        proposed,
      ),
      proposed,
    );
    expect(retired.status).toBe('retired');
  });

  it('a cleared suspension watches the strategy again from that day', () => {
    const s = fold(
      elimination.decide(
        { type: 'Suspend', strategyId: 's1', at, figures: fig(), breaches: ['B'] },
        watching,
      ),
    );
    const cleared = fold(
      elimination.decide(
        { type: 'ClearSuspension', strategyId: 's1', at, outcome: 'recovered', reason: 'r' },
        s,
      ),
      s,
    );
    expect(cleared).toMatchObject({
      status: 'watching',
      watchFrom: '2026-03-01',
      suspendedAt: null,
    });
  });
});
