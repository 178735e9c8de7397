import type pg from 'pg';
import type { JsonObject } from '../core/eventstore/event-store.js';

/** A strategy as elimination (automation capability 7) looks at it. */
export type EliminationCandidate = {
  strategyId: string;
  status: string;
  kind: string;
  parameters: JsonObject;
  symbols: string[];
  timeframe: string;
  /** What it asked for, in the quote currency; 0 when it did not say. */
  capital: number;
};

/** The open positions of one strategy, per portfolio and symbol (signed quantity). */
export type OpenPosition = { portfolioId: string; symbol: string; quantity: number };

/** What the elimination process manager reads from the read models; all its SQL is here. */
export class EliminationQueries {
  constructor(private readonly pool: pg.Pool) {}

  /** Strategies that trade, are paused or were retired, oldest first. */
  async strategies(): Promise<EliminationCandidate[]> {
    const { rows } = await this.pool.query<{
      strategy_id: string;
      status: string;
      kind: string;
      symbols: string[];
      timeframe: string;
      parameters: JsonObject;
      capital: number | null;
    }>(
      `SELECT strategy_id, status, kind, symbols, timeframe, state->'parameters' AS parameters,
              (state->>'capitalRequest')::float8 AS capital
         FROM qcat_read.strategies
        WHERE status IN ('paper', 'live', 'paused')
        ORDER BY created_position`,
    );
    return rows.map((row) => ({
      strategyId: row.strategy_id,
      status: row.status,
      kind: row.kind,
      symbols: row.symbols,
      timeframe: row.timeframe,
      parameters: row.parameters,
      capital: row.capital ?? 0,
    }));
  }

  async openPositions(strategyId: string): Promise<OpenPosition[]> {
    const { rows } = await this.pool.query<{
      portfolio_id: string;
      symbol: string;
      quantity: number;
    }>(
      `SELECT portfolio_id, symbol, quantity FROM qcat_read.positions
        WHERE strategy_id = $1 AND quantity <> 0 ORDER BY portfolio_id, symbol`,
      [strategyId],
    );
    return rows.map((row) => ({
      portfolioId: row.portfolio_id,
      symbol: row.symbol,
      quantity: row.quantity,
    }));
  }
}
