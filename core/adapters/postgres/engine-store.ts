/**
 * The paper engine's PostgreSQL ports: its snapshots (schema `qcat_engine`, a cache of state the
 * engine can always rebuild from its write-ahead log, so neither backed up nor restored) and the
 * strategies it trades (the `strategies` read model).
 */
import type pg from 'pg';
import { migrate } from './migrations.js';
import type {
  EngineSnapshot,
  RiskSource,
  SnapshotStore,
  StrategyBook,
  StrategySource,
} from '../../engine/engine.js';
import type { JsonObject } from '../../eventstore/event-store.js';
import { emptySnapshot, type RiskSnapshot } from '../../risk/checks.js';
import type { Timeframe } from '../../strategies/kinds.js';

/**
 * Creates the `qcat_engine` schema if missing: a migration among QCAT's (ADR 028), applied with
 * every other pending one. Safe when several processes start at once.
 */
export async function ensureEngineSchema(pool: pg.Pool): Promise<void> {
  await migrate(pool);
}

export class PostgresSnapshotStore implements SnapshotStore {
  constructor(private readonly pool: pg.Pool) {}

  async load(portfolioId: string): Promise<EngineSnapshot | undefined> {
    const { rows } = await this.pool.query<{ snapshot: EngineSnapshot }>(
      'SELECT snapshot FROM qcat_engine.snapshots WHERE portfolio_id = $1',
      [portfolioId],
    );
    return rows[0]?.snapshot;
  }

  /** Never moves a snapshot back to an earlier cycle. */
  async save(snapshot: EngineSnapshot): Promise<void> {
    await this.pool.query(
      `INSERT INTO qcat_engine.snapshots (portfolio_id, cycle, snapshot) VALUES ($1, $2, $3)
       ON CONFLICT (portfolio_id) DO UPDATE SET cycle = excluded.cycle, snapshot = excluded.snapshot,
              saved_at = now()
        WHERE qcat_engine.snapshots.cycle <= excluded.cycle`,
      [snapshot.portfolioId, snapshot.cycle, JSON.stringify(snapshot)],
    );
  }

  /** Timeframes of the portfolios that have a snapshot. */
  async portfolios(): Promise<string[]> {
    const { rows } = await this.pool.query<{ portfolio_id: string }>(
      'SELECT portfolio_id FROM qcat_engine.snapshots ORDER BY portfolio_id',
    );
    return rows.map((row) => row.portfolio_id);
  }
}

/** Strategies from the `strategies` read model, with their current approved parameters. */
export class ReadModelStrategySource implements StrategySource {
  constructor(private readonly pool: pg.Pool) {}

  async strategies(timeframe: Timeframe): Promise<StrategyBook[]> {
    const { rows } = await this.pool.query<{
      strategy_id: string;
      status: string;
      kind: string;
      symbols: string[];
      parameters: JsonObject;
      capital: number | null;
    }>(
      `SELECT strategy_id, status, kind, symbols, state->'parameters' AS parameters,
              (state->>'capitalRequest')::float8 AS capital
         FROM qcat_read.strategies
        WHERE timeframe = $1 AND status IN ('paper', 'live', 'paused', 'retired')
        ORDER BY created_position`,
      [timeframe],
    );
    return rows.map((row) => ({
      strategyId: row.strategy_id,
      status: row.status,
      kind: row.kind,
      symbols: row.symbols,
      parameters: row.parameters,
      capital: row.capital ?? 0,
    }));
  }

  /** Timeframes that have a strategy in paper, live or paused state. */
  async timeframes(): Promise<Timeframe[]> {
    const { rows } = await this.pool.query<{ timeframe: Timeframe }>(
      `SELECT DISTINCT timeframe FROM qcat_read.strategies
        WHERE status IN ('paper', 'live', 'paused') ORDER BY timeframe`,
    );
    return rows.map((row) => row.timeframe);
  }
}

/** The risk streams folded, from the `risk_snapshot` read model (empty until it has a row). */
export class ReadModelRiskSource implements RiskSource {
  constructor(private readonly pool: pg.Pool) {}

  async snapshot(): Promise<{ snapshot: RiskSnapshot; position: bigint }> {
    const { rows } = await this.pool.query<{ snapshot: RiskSnapshot; position: string }>(
      'SELECT snapshot, position FROM qcat_read.risk_snapshot WHERE id = 1',
    );
    const row = rows[0];
    return row
      ? { snapshot: row.snapshot, position: BigInt(row.position) }
      : { snapshot: emptySnapshot(), position: -1n };
  }
}
