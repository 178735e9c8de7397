import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

export interface TestDatabase {
  url: string;
  /** On return the database is gone for every client: its sessions ended, its name unknown. */
  drop(): Promise<void>;
}

const withDatabase = (serverUrl: string, database: string): string => {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
};

/**
 * Every `DROP DATABASE` makes PostgreSQL take an immediate checkpoint of the whole server and wait
 * for it (0.2–2 s while other files write), a hundred times a run. So a spec file's database is
 * not dropped when the file is done with it but made unreachable as a dropped one is (no
 * connections allowed, its sessions ended, renamed into this run's graveyard: its name is then
 * unknown, as after a drop); the run's global setup drops the graveyard every 15 s and at the
 * end, many at a time, so that one checkpoint serves many (postgres-global-setup.ts). ADR 020.
 */
async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    const database = admin.escapeIdentifier(name);
    const graveyard = inject('testDatabaseGraveyard') as string | undefined;
    if (!graveyard) {
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      return;
    }
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount === 0) return;
    await admin.query(`ALTER DATABASE ${database} ALLOW_CONNECTIONS false`);
    await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [name],
    );
    // Waits up to 5 s for the ended sessions to be gone, as DROP DATABASE … WITH (FORCE) does.
    const buried = admin.escapeIdentifier(`${graveyard}${randomBytes(6).toString('hex')}`);
    await admin.query(`ALTER DATABASE ${database} RENAME TO ${buried}`);
  } finally {
    await admin.end();
  }
}

/**
 * A fresh database on the test server, empty, or with every migration applied (`migrated`: a copy
 * of the run's migrated template, postgres-global-setup.ts); `drop()` removes it.
 */
export async function createTestDatabase(
  label = 'spec',
  options: { migrated?: boolean } = {},
): Promise<TestDatabase> {
  const serverUrl = inject('postgresServerUrl');
  const name = `qcat_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const template = options.migrated
    ? (inject('migratedTemplate') as string | undefined)
    : undefined;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(
      `CREATE DATABASE ${admin.escapeIdentifier(name)}` +
        (template ? ` TEMPLATE ${admin.escapeIdentifier(template)}` : ''),
    );
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(serverUrl, name),
    drop: () => dropDatabase(serverUrl, name),
  };
}

/**
 * Drops roles a spec made. A role cannot go while a database holds its objects or grants, and a
 * spec's dropped database may still lie in the graveyard (above): the databases that depend on
 * the roles (pg_shdepend) are dropped first, for real.
 */
export async function dropRoles(serverUrl: string, roles: readonly string[]): Promise<void> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ datname: string }>(
      `SELECT DISTINCT d.datname FROM pg_shdepend s
         JOIN pg_database d ON d.oid = s.dbid
         JOIN pg_roles r ON r.oid = s.refobjid
        WHERE r.rolname = ANY($1::text[])`,
      [roles],
    );
    for (const { datname } of rows)
      await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(datname)} WITH (FORCE)`);
    for (const role of roles)
      await admin.query(`DROP ROLE IF EXISTS ${admin.escapeIdentifier(role)}`);
  } finally {
    await admin.end();
  }
}
