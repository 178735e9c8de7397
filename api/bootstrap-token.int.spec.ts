import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../ops/config.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';
import { startServer, type RunningServer } from '../ops/server.js';

/**
 * The first admin token under compose (QCAT_BOOTSTRAP_TOKEN_FILE): written to a file only its
 * owner can read, never to the log lines that container logs keep.
 */
describe('the first admin token with QCAT_BOOTSTRAP_TOKEN_FILE', () => {
  const folder = mkdtempSync(join(tmpdir(), 'qcat-bootstrap-'));
  const file = join(folder, 'admin-token');
  let database: TestDatabase | undefined;
  let server: RunningServer | undefined;
  afterAll(async () => {
    await server?.stop();
    await database?.drop();
    rmSync(folder, { recursive: true, force: true });
  });

  it('goes to a 0600 file, not to the announced lines, and works', async () => {
    database = await createTestDatabase('bootstrap_token');
    const lines: string[] = [];
    server = await startServer(
      loadConfig({
        DATABASE_URL: database.url,
        PORT: '0',
        LOG_LEVEL: 'silent',
        PAPER_TRADING: 'off',
        QCAT_BOOTSTRAP_TOKEN_FILE: file,
      }),
      { announce: (line) => lines.push(line) },
    );
    const token = readFileSync(file, 'utf8').trim();
    expect(token.length).toBeGreaterThan(20);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(file);
    expect(lines[0]).not.toContain(token);
    const response = await fetch(`${server.url}/api/v1/keys`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    await response.text();
  });
});
