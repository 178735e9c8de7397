import type { SyntheticProfile } from './synthetic-path.js';
import type { Instrument } from './types.js';

export type { SyntheticProfile };

interface DefaultSymbol extends Instrument, SyntheticProfile {}

const usdt = (
  base: string,
  tickSize: number,
  lotSize: number,
  profile: SyntheticProfile,
): DefaultSymbol => ({
  symbol: `${base}USDT`,
  base,
  quote: 'USDT',
  tickSize,
  lotSize,
  minNotional: 5,
  ...profile,
});

// Prices, steps and turnover roughly as on a large spot exchange in 2024–2025.
const DEFAULTS: readonly DefaultSymbol[] = [
  usdt('BTC', 0.01, 0.00001, {
    startPrice: 65_000,
    annualVolatility: 0.55,
    beta: 1,
    dailyQuoteVolume: 1.5e9,
  }),
  usdt('ETH', 0.01, 0.0001, {
    startPrice: 3_200,
    annualVolatility: 0.7,
    beta: 1.15,
    dailyQuoteVolume: 8e8,
  }),
  usdt('SOL', 0.01, 0.001, {
    startPrice: 150,
    annualVolatility: 0.95,
    beta: 1.35,
    dailyQuoteVolume: 4e8,
  }),
  usdt('BNB', 0.01, 0.001, {
    startPrice: 580,
    annualVolatility: 0.55,
    beta: 0.85,
    dailyQuoteVolume: 1.5e8,
  }),
  usdt('XRP', 0.0001, 0.1, {
    startPrice: 0.55,
    annualVolatility: 0.85,
    beta: 1.1,
    dailyQuoteVolume: 3e8,
  }),
  usdt('ADA', 0.0001, 0.1, {
    startPrice: 0.45,
    annualVolatility: 0.9,
    beta: 1.2,
    dailyQuoteVolume: 1e8,
  }),
  usdt('DOGE', 0.00001, 1, {
    startPrice: 0.12,
    annualVolatility: 1,
    beta: 1.3,
    dailyQuoteVolume: 2.5e8,
  }),
  usdt('AVAX', 0.01, 0.01, {
    startPrice: 30,
    annualVolatility: 1,
    beta: 1.35,
    dailyQuoteVolume: 8e7,
  }),
  usdt('LINK', 0.01, 0.01, {
    startPrice: 14,
    annualVolatility: 0.95,
    beta: 1.25,
    dailyQuoteVolume: 7e7,
  }),
  usdt('DOT', 0.001, 0.01, {
    startPrice: 6.5,
    annualVolatility: 0.9,
    beta: 1.2,
    dailyQuoteVolume: 5e7,
  }),
  usdt('LTC', 0.01, 0.001, {
    startPrice: 80,
    annualVolatility: 0.8,
    beta: 1.05,
    dailyQuoteVolume: 6e7,
  }),
  usdt('TRX', 0.00001, 0.1, {
    startPrice: 0.12,
    annualVolatility: 0.6,
    beta: 0.75,
    dailyQuoteVolume: 5e7,
  }),
];

/** The default universe: twelve USDT pairs with realistic tick and lot sizes and minimum notional. */
export const DEFAULT_INSTRUMENTS: Instrument[] = DEFAULTS.map(
  ({ symbol, base, quote, tickSize, lotSize, minNotional }) => ({
    symbol,
    base,
    quote,
    tickSize,
    lotSize,
    minNotional,
  }),
);

/** The profiles of the default universe, by symbol. */
export const DEFAULT_PROFILES: Readonly<Record<string, SyntheticProfile>> = Object.fromEntries(
  DEFAULTS.map(({ symbol, startPrice, annualVolatility, beta, dailyQuoteVolume }) => [
    symbol,
    { startPrice, annualVolatility, beta, dailyQuoteVolume },
  ]),
);

/**
 * A symbol's profile: its default one, else a generic altcoin whose start price is 10,000 ticks;
 * `overrides` on top.
 */
export function syntheticProfile(
  instrument: Instrument,
  overrides: Partial<SyntheticProfile> = {},
): SyntheticProfile {
  const base = DEFAULT_PROFILES[instrument.symbol] ?? {
    startPrice: instrument.tickSize * 10_000,
    annualVolatility: 0.9,
    beta: 1.2,
    dailyQuoteVolume: 2e7,
  };
  return { ...base, ...overrides };
}
