import { describe, expect, it } from 'vitest';
import { parseFeedState, SyntheticFeed } from './live-feed.js';
import { DEFAULT_INSTRUMENTS, generateCandles } from './synthetic.js';

const origin = Date.UTC(2026, 0, 1);
const instruments = DEFAULT_INSTRUMENTS.slice(0, 3);
const minutes = (n: number) => origin + n * 60_000;

describe('SyntheticFeed', () => {
  it('hands out each minute once its close has passed, all instruments together', () => {
    const feed = SyntheticFeed.start({ seed: 7, origin, instruments });
    expect(feed.advance(minutes(1) - 1)).toEqual([]);
    const first = feed.advance(minutes(1));
    expect(first.map((c) => [c.symbol, c.openTime])).toEqual(
      instruments.map((i) => [i.symbol, origin]),
    );
    expect(feed.advance(minutes(1))).toEqual([]);
    expect(feed.advance(minutes(3) + 5)).toHaveLength(6);
    expect(feed.position).toBe(minutes(3));
  });

  it('is the same path as the generator, however the clock is sliced', () => {
    const expected = [...generateCandles({ seed: 7, from: origin, to: minutes(90), instruments })];
    const feed = SyntheticFeed.start({ seed: 7, origin, instruments });
    const got = [];
    for (let t = origin; t <= minutes(90); t += 37_000) got.push(...feed.advance(t));
    got.push(...feed.advance(minutes(90)));
    expect(got).toEqual(expected.slice(0, got.length));
    expect(got.length).toBe(expected.length);
  });

  it('rolls up longer bars right after their last minute, complete buckets only', () => {
    const start = origin + 30 * 60_000; // half an hour into the first hour: that hour is partial
    const feed = SyntheticFeed.start({
      seed: 3,
      origin: start,
      instruments,
      rollUps: ['15m', '1h'],
    });
    const out = feed.advance(origin + 2 * 3_600_000);
    const hours = out.filter((c) => c.timeframe === '1h');
    expect(hours.map((c) => c.openTime)).toEqual(instruments.map(() => origin + 3_600_000));
    const quarter = out.filter((c) => c.timeframe === '15m');
    expect(quarter).toHaveLength(6 * instruments.length);
    // The 1h bar comes right after the minute that completes it (and the 15m bar it completes).
    const index = out.findIndex((c) => c.timeframe === '1h');
    const before = out.slice(0, index).filter((c) => c.timeframe === '1m');
    expect(before.at(-1)?.openTime).toBe(origin + 2 * 3_600_000 - 60_000);
    expect(out.slice(index).filter((c) => c.timeframe === '1m')).toEqual([]);
    const minutesOfHour = out.filter(
      (c) =>
        c.timeframe === '1m' &&
        c.symbol === instruments[0]?.symbol &&
        c.openTime >= origin + 3_600_000 &&
        c.openTime < origin + 2 * 3_600_000,
    );
    const hour = hours[0];
    expect(hour?.high).toBe(Math.max(...minutesOfHour.map((c) => c.high)));
    expect(hour?.close).toBe(minutesOfHour.at(-1)?.close);
  });

  it('resumed from its saved state (through JSON), gives exactly the bars the uninterrupted feed gives', () => {
    const options = { seed: 5, origin, instruments, rollUps: ['5m', '15m', '1h'] as const };
    const whole = SyntheticFeed.start({ ...options, rollUps: [...options.rollUps] });
    const expected = whole.advance(origin + 3 * 3_600_000);
    // Stopped at awkward points: inside a 5m, a 15m and an hour bar, and right after one.
    for (const stop of [7, 61, 95, 120]) {
      const first = SyntheticFeed.start({ ...options, rollUps: [...options.rollUps] });
      const before = first.advance(minutes(stop));
      const saved = parseFeedState(JSON.parse(JSON.stringify(first.state())));
      expect(saved, `state at minute ${stop}`).toBeDefined();
      if (!saved) return;
      const resumed = SyntheticFeed.resume(saved, { instruments, rollUps: [...options.rollUps] });
      expect(resumed.position).toBe(minutes(stop));
      const after = resumed.advance(origin + 3 * 3_600_000);
      expect([...before, ...after]).toEqual(expected);
    }
  });

  it('takes a long catch-up in steps of at most maxMinutes', () => {
    const feed = SyntheticFeed.start({ seed: 7, origin, instruments });
    expect(feed.advance(minutes(100), 30)).toHaveLength(30 * instruments.length);
    expect(feed.position).toBe(minutes(30));
    expect(feed.advance(minutes(100))).toHaveLength(70 * instruments.length);
  });

  it('refuses a saved state that is not one, and a resume with other instruments or roll-ups', () => {
    expect(parseFeedState(null)).toBeUndefined();
    expect(parseFeedState({ path: {}, rollUps: [] })).toBeUndefined();
    const feed = SyntheticFeed.start({ seed: 7, origin, instruments, rollUps: ['1h'] });
    feed.advance(minutes(10));
    const state = feed.state();
    expect(() =>
      SyntheticFeed.resume(state, { instruments: instruments.slice(1), rollUps: ['1h'] }),
    ).toThrow();
    expect(() => SyntheticFeed.resume(state, { instruments, rollUps: ['4h'] })).toThrow();
  });
});
