import { describe, expect, it } from 'vitest';
import { loadConfig } from '../ops/config.js';
import { createTestDatabase } from '../test/support/test-database.js';
import { startServer } from '../ops/server.js';

describe('the bootstrap admin key', () => {
  it('is issued once when two processes start on one empty store at the same time', async () => {
    for (let round = 0; round < 3; round++) {
      const database = await createTestDatabase(`bootstrap_${round.toString()}`);
      const config = loadConfig({
        DATABASE_URL: database.url,
        PORT: '0',
        LOG_LEVEL: 'silent',
        PAPER_TRADING: 'off',
      });
      const announced: string[] = [];
      const announce = (line: string): void => {
        announced.push(line);
      };
      const servers = await Promise.all([
        startServer(config, { announce }),
        startServer(config, { announce }),
      ]);
      try {
        const tokens = servers.map((server) => server.bootstrapToken).filter(Boolean);
        expect(tokens, `round ${round.toString()}`).toHaveLength(1);
        expect(announced.filter((line) => line.includes('created admin API key'))).toHaveLength(1);
        const events = await servers[0].runtime.eventStore.readAll();
        expect(events.filter((event) => event.type === 'ApiKeyIssued')).toHaveLength(1);
      } finally {
        await Promise.all(servers.map((server) => server.stop()));
        await database.drop();
      }
    }
  }, 120_000);
});
