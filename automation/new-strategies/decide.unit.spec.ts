import { describe, expect, it } from 'vitest';
import { checkSpace } from '../../core/optimization/space.js';
import { newStrategies, type NewStrategiesState } from '../../core/strategies/new-strategies.js';
import {
  approvedSymbols,
  candidates,
  creationRefusal,
  room,
  TEMPLATES,
  weekOf,
  type ListedSymbol,
} from './decide.js';

const empty: NewStrategiesState = newStrategies.initialState();
const W = '2026-03-02';
const templates = Object.keys(TEMPLATES);

describe('new strategies (capability 8): which candidates, given / when / then', () => {
  it('the week is its Monday, UTC', () => {
    expect(weekOf(new Date('2026-03-02T00:00:00Z'))).toBe(W);
    expect(weekOf(new Date('2026-03-08T23:59:59Z'))).toBe(W);
    expect(weekOf(new Date('2026-03-09T00:00:00Z'))).toBe('2026-03-09');
  });

  it('every template has a search space its kind accepts', () => {
    for (const [kind, space] of Object.entries(TEMPLATES))
      expect(() => {
        checkSpace(kind, space);
      }).not.toThrow();
  });

  it('given room for 2, when two hot symbols come, then the best symbol first, a template each, up to the room', () => {
    expect(
      candidates({
        symbols: ['ETHUSDT', 'BTCUSDT'],
        templates,
        ledger: empty,
        caps: { perWeek: 2, total: 5 },
        week: W,
      }),
    ).toEqual([
      { template: 'sma_crossover', symbol: 'ETHUSDT' },
      { template: 'rsi_mean_reversion', symbol: 'ETHUSDT' },
    ]);
  });

  it('given a template tried on a symbol already, then it is not tried again', () => {
    const ledger: NewStrategiesState = { ...empty, tried: { 'sma_crossover:ETHUSDT': 'o1' } };
    expect(
      candidates({
        symbols: ['ETHUSDT'],
        templates,
        ledger,
        caps: { perWeek: 1, total: 5 },
        week: W,
      }),
    ).toEqual([{ template: 'rsi_mean_reversion', symbol: 'ETHUSDT' }]);
  });

  it('given the week or the total used up, then no candidate; no hot symbol, none either', () => {
    const ledger: NewStrategiesState = { ...empty, created: [{ strategyId: 'a', week: W }] };
    expect(room(ledger, { perWeek: 1, total: 5 }, W)).toBe(0);
    expect(room(ledger, { perWeek: 3, total: 1 }, '2026-03-09')).toBe(0);
    expect(room(ledger, { perWeek: 1, total: 5 }, '2026-03-09')).toBe(1);
    expect(
      candidates({
        symbols: ['ETHUSDT'],
        templates,
        ledger,
        caps: { perWeek: 1, total: 5 },
        week: W,
      }),
    ).toEqual([]);
    expect(
      candidates({
        symbols: [],
        templates,
        ledger: empty,
        caps: { perWeek: 1, total: 5 },
        week: W,
      }),
    ).toEqual([]);
  });

  it('a candidate the gate refused, or without parameters, creates nothing and says why', () => {
    expect(
      creationRefusal({ passed: false, reasons: ['DSR_BELOW_GATE: dsr=0.4'], hasParameters: true }),
    ).toBe('the walk-forward gate refused it: DSR_BELOW_GATE: dsr=0.4');
    expect(creationRefusal({ passed: true, reasons: [], hasParameters: false })).toMatch(
      /no parameters/,
    );
    expect(creationRefusal({ passed: true, reasons: [], hasParameters: true })).toBeNull();
  });
});

describe('new strategies (capability 8): which symbols, given / when / then', () => {
  const now = Date.parse('2026-03-09T00:00:00Z');
  const HOUR = 3_600_000;
  const row = (symbol: string, tradableUntil: number | null, score: number | null = 1) =>
    ({ symbol, tradableUntil, score }) satisfies ListedSymbol;

  it('given approved symbols on the list, when the week is tried, then they come best score first', () => {
    const list = [row('BTCUSDT', now + 7 * 24 * HOUR, 1.2), row('SOLUSDT', now + HOUR, 3.4)];
    expect(approvedSymbols(list, now)).toEqual(['SOLUSDT', 'BTCUSDT']);
    const symbols = approvedSymbols(list, now);
    expect(
      candidates({ symbols, templates, ledger: empty, caps: { perWeek: 1, total: 5 }, week: W }),
    ).toEqual([{ template: 'sma_crossover', symbol: 'SOLUSDT' }]);
  });

  it('given a proposal still pending or rejected (never approved), then it is not used', () => {
    expect(approvedSymbols([row('ETHUSDT', null, 9)], now)).toEqual([]);
  });

  it('given an approval that expired at or before the tick, then it is not used; an instant before, it is', () => {
    const list = [row('SOLUSDT', now), row('ETHUSDT', now - HOUR)];
    expect(approvedSymbols(list, now)).toEqual([]);
    expect(approvedSymbols(list, now - 1)).toEqual(['SOLUSDT']);
  });

  it('given an empty list (rankings recommend, nobody approved), then no symbol and no candidate', () => {
    expect(approvedSymbols([], now)).toEqual([]);
  });

  it('given equal or missing scores, then by name, scored ones first', () => {
    const until = now + HOUR;
    const list = [row('XRPUSDT', until, null), row('ETHUSDT', until, 2), row('BTCUSDT', until, 2)];
    expect(approvedSymbols(list, now)).toEqual(['BTCUSDT', 'ETHUSDT', 'XRPUSDT']);
  });
});

describe('the ledger enforces the caps', () => {
  const reserve = (strategyId: string, week: string, perWeek: number, total: number) =>
    ({
      type: 'ReserveNewStrategy',
      strategyId,
      optimizationId: 'o',
      week,
      perWeek,
      total,
    }) as const;
  const fold = (state: NewStrategiesState, events: ReturnType<typeof newStrategies.decide>) =>
    events.reduce((s, e) => newStrategies.evolve(s, e), state);

  it('one a week, five in total: the second of a week and the sixth overall are refused with the cap', () => {
    let state = fold(empty, newStrategies.decide(reserve('a', W, 1, 5), empty));
    expect(() => newStrategies.decide(reserve('b', W, 1, 5), state)).toThrow(
      /NEW_STRATEGIES_WEEK_REACHED|1 strategies created in the week/,
    );
    // The same one again is not a second.
    expect(newStrategies.decide(reserve('a', W, 1, 5), state)).toEqual([]);
    state = fold(state, newStrategies.decide(reserve('b', '2026-03-09', 1, 2), state));
    expect(() => newStrategies.decide(reserve('c', '2026-03-16', 1, 2), state)).toThrow(
      /allows 2 in total/,
    );
  });
});
