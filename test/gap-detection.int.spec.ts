import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGapTest } from './gap-test.js';
import { NaiveBigserialEventStore } from './naive-bigserial-event-store.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';

// The gap test is only worth something if it fails on the design it guards against (ADR 001).
describe('gap test against a naive bigserial event log', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase('naive');
  });
  afterAll(async () => {
    await database.drop();
  });

  it('catches the events a live subscriber skips when transactions commit out of order', async () => {
    const store = await NaiveBigserialEventStore.connect(database.url);
    try {
      const report = await runGapTest({
        store,
        connect: () => NaiveBigserialEventStore.connect(database.url),
        writers: 8,
        events: 20_000,
        settleMs: 3_000,
      });
      console.log(
        `naive bigserial design: ${report.written} written, ${report.received} delivered, ${report.missingCount} skipped`,
      );
      expect(report.written).toBe(20_000);
      expect(report.missingCount).toBeGreaterThan(0);
      expect(report.received).toBe(report.written - report.missingCount);
    } finally {
      await store.close();
    }
  }, 300_000);
});
