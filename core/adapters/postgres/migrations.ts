import type pg from 'pg';
import { eventLog } from './migrations/001-event-log.js';
import { idempotencyKeys } from './migrations/002-idempotency-keys.js';
import { projectionRegistry } from './migrations/003-projection-registry.js';
import { setBasedGroupAppend } from './migrations/004-set-based-group-append.js';
import { hashChain } from './migrations/005-hash-chain.js';
import { readModelChangeNotices } from './migrations/006-read-model-change-notices.js';
import { timeIndexMigration } from './migrations/007-time-index.js';
import { snapshotsMigration } from './migrations/008-command-side-snapshots.js';
import { parkedProjectionEvents } from './migrations/009-parked-projection-events.js';
import { marketInstrumentsAndCandles } from './migrations/010-market-instruments-and-candles.js';
import { marketLiveFeeds } from './migrations/011-market-live-feeds.js';
import { marketLiveFeedState } from './migrations/012-market-live-feed-state.js';
import { marketOpenInterestAndFunding } from './migrations/013-market-open-interest-and-funding.js';
import { engineSnapshots } from './migrations/014-engine-snapshots.js';
import { processManagersMigration } from './migrations/015-process-managers.js';
import { readModelUnchangedMigration } from './migrations/016-read-model-unchanged.js';
import { optimizationTrialsMigration } from './migrations/017-optimization-trials.js';
import { backtestResults } from './migrations/018-backtest-results.js';

/**
 * One migration mechanism for every schema QCAT owns in PostgreSQL (ADR 028): the log, the market
 * data (ADR 007), the engine's snapshots. One file a migration under
 * migrations/, one ledger (qcat_migrations), applied in order at start-up under an advisory lock,
 * each in its own transaction. Append-only: never edit what a released migration does, add one.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
  /**
   * Functions this migration (re)defines, as their current definitions (`CREATE OR REPLACE`,
   * migrations/functions/): run after `sql`. A later change edits the definition and lists it
   * again in its own migration; no migration keeps an old copy.
   */
  functions?: readonly string[];
  /** Work SQL cannot do, run after `sql` and `functions` in the same transaction. */
  run?: (client: pg.ClientBase) => Promise<void>;
  /**
   * Where a database created before the one mechanism recorded this migration: a ledger table of
   * its own and its version there. Recorded there, it is recorded here too and not run again.
   */
  carriedFrom?: { ledger: string; version: number };
}

/** Every migration, in order (the name is kept: a migration of the log was the first kind). */
export const eventLogMigrations: readonly Migration[] = [
  eventLog,
  idempotencyKeys,
  projectionRegistry,
  setBasedGroupAppend,
  hashChain,
  readModelChangeNotices,
  timeIndexMigration,
  snapshotsMigration,
  parkedProjectionEvents,
  marketInstrumentsAndCandles,
  marketLiveFeeds,
  marketLiveFeedState,
  marketOpenInterestAndFunding,
  engineSnapshots,
  processManagersMigration,
  readModelUnchangedMigration,
  optimizationTrialsMigration,
  backtestResults,
];

/** Arbitrary constant: the advisory lock that serialises concurrent migrators. */
const MIGRATION_LOCK = 7_302_145_001;

/**
 * True when every migration is recorded. Checked before anything else so that a process logging
 * in as the application role, which may not change the schema (ADR 015), starts without DDL.
 */
async function upToDate(client: pg.ClientBase, migrations: readonly Migration[]): Promise<boolean> {
  const table = await client.query<{ found: boolean }>(
    "SELECT to_regclass('qcat_migrations') IS NOT NULL AS found",
  );
  if (!table.rows[0]?.found) return false;
  const { rows } = await client.query<{ version: number }>('SELECT version FROM qcat_migrations');
  const done = new Set(rows.map((row) => row.version));
  return migrations.every((migration) => done.has(migration.version));
}

/** SQLSTATE insufficient_privilege (42501) or must_be_owner. */
const lacksPrivilege = (error: unknown): error is Error & { code: string } =>
  error instanceof Error && 'code' in error && error.code === '42501';

const LEDGER = `
  CREATE TABLE IF NOT EXISTS qcat_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`;

/**
 * Records here what a ledger of old recorded (say qcat_market.schema_versions, with the time it
 * was applied). From now on qcat_migrations is the only ledger written; the old one is left as it
 * was, read-only, so that a replica of the version before (a rolling upgrade, a roll-back) still
 * finds its migrations recorded and starts. A later migration may drop it.
 */
async function carryOver(client: pg.ClientBase, migrations: readonly Migration[]): Promise<void> {
  const ledgers = new Set(migrations.flatMap((m) => (m.carriedFrom ? [m.carriedFrom.ledger] : [])));
  for (const ledger of ledgers) {
    const { rows } = await client.query<{ found: boolean }>(
      'SELECT to_regclass($1) IS NOT NULL AS found',
      [ledger],
    );
    if (!rows[0]?.found) continue;
    const carried = migrations.filter((m) => m.carriedFrom?.ledger === ledger);
    await client.query(
      `INSERT INTO qcat_migrations (version, name, applied_at)
       SELECT u.version, u.name, old.applied_at
         FROM unnest($1::int[], $2::int[], $3::text[]) AS u(version, old_version, name)
         JOIN ${ledger} old ON old.version = u.old_version
       ON CONFLICT (version) DO NOTHING`,
      [
        carried.map((m) => m.version),
        carried.map((m) => m.carriedFrom?.version),
        carried.map((m) => m.name),
      ],
    );
  }
}

/** One migration in its own transaction, recorded in the same one. */
async function apply(client: pg.ClientBase, migration: Migration): Promise<void> {
  await client.query('BEGIN');
  try {
    if (migration.sql.trim() !== '') await client.query(migration.sql);
    for (const definition of migration.functions ?? []) await client.query(definition);
    if (migration.run) await migration.run(client);
    await client.query('INSERT INTO qcat_migrations (version, name) VALUES ($1, $2)', [
      migration.version,
      migration.name,
    ]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}

/** Under the lock: the ledger, what older ledgers recorded, then every migration not recorded. */
async function applyPending(
  client: pg.ClientBase,
  migrations: readonly Migration[],
): Promise<number[]> {
  await client.query(LEDGER);
  await carryOver(client, migrations);
  const { rows } = await client.query<{ version: number }>('SELECT version FROM qcat_migrations');
  const done = new Set(rows.map((row) => row.version));
  const applied: number[] = [];
  for (const migration of migrations) {
    if (done.has(migration.version)) continue;
    await apply(client, migration);
    applied.push(migration.version);
  }
  return applied;
}

/** Applies the migrations that are not yet recorded; safe to run from several processes at once. */
export async function migrate(
  pool: pg.Pool,
  migrations: readonly Migration[] = eventLogMigrations,
): Promise<number[]> {
  const client = await pool.connect();
  let current: boolean;
  try {
    current = await upToDate(client, migrations);
  } catch (error) {
    client.release();
    throw error;
  }
  if (current) {
    client.release();
    return [];
  }
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    return await applyPending(client, migrations);
  } catch (error) {
    if (lacksPrivilege(error))
      throw new Error(
        `pending migrations need the database owner role: run \`qcat migrate\` with the ` +
          `owner's DATABASE_URL first (docs/deployment.md, "Database roles"): ${error.message}`,
        { cause: error },
      );
    throw error;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    client.release();
  }
}
