import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { toError } from '../../core/errors.js';
import { startEmbeddedPostgres } from '../../ops/embedded-postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A PostgreSQL server the spec files may create their own databases on. */
    postgresServerUrl: string;
  }
}

/**
 * One PostgreSQL server for the whole run: TEST_DATABASE_URL when set (CI sets it to the machine's
 * server), otherwise an embedded one in a temporary folder. Each spec file creates its own database.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env['TEST_DATABASE_URL']?.trim();
  if (given) {
    const client = new pg.Client({ connectionString: given });
    try {
      await client.connect();
      await client.query('SELECT 1');
    } catch (error) {
      throw new Error(`TEST_DATABASE_URL=${given} does not answer: ${toError(error).message}`, {
        cause: error,
      });
    } finally {
      await client.end().catch(() => undefined);
    }
    project.provide('postgresServerUrl', given);
    return () => Promise.resolve();
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'qcat-test-pg-'));
  const server = await startEmbeddedPostgres({ dataDir, persistent: false, database: 'postgres' });
  project.provide('postgresServerUrl', server.url);
  return async () => {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
}
