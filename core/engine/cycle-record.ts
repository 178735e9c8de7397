import { z } from 'zod';
import { eventSchema } from '../eventstore/typed-events.js';
import type { Candle } from '../market/types.js';
import type { RiskSnapshot } from '../risk/checks.js';
import type { PortfolioConfig } from './engine-ports.js';

/** The data of `EngineCycleOpened`, the engine's write-ahead log (ADR 008): everything a cycle depends on. */
export type CycleRecord = {
  portfolioId: string;
  cycle: number;
  /** openTime of `candles` (all share it); the previous cursor when there are none. */
  barTime: number;
  candles: Candle[];
  /** Desk revisions taken in, inclusive; null for none. */
  inbox: { from: number; to: number } | null;
  /** The configuration from this cycle on; present when it changed (always in cycle 0). */
  config: PortfolioConfig | null;
  /** The risk snapshot from the read model, from this cycle on; present when it changed. */
  risk?: RiskSnapshot | null;
};

const anObject = (value: unknown): value is object =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The record's schema as it is read back in recovery. The envelope is checked field by field; the
 * candles, configuration and risk snapshot only as objects: the engine wrote them itself, in the
 * same transaction as its cycle, and a replay must not cost a full parse of each (ADR 028).
 */
export const engineCycleOpened = eventSchema(
  'EngineCycleOpened',
  z.looseObject({
    portfolioId: z.string(),
    cycle: z.number().int().min(0),
    barTime: z.number(),
    candles: z.array(z.custom<Candle>(anObject)),
    inbox: z.object({ from: z.number(), to: z.number() }).nullable(),
    config: z.custom<PortfolioConfig>(anObject).nullable(),
    risk: z.custom<RiskSnapshot>(anObject).nullable().optional(),
  }),
);
