import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { placeOrder } from '../test/support/paper-orders.js';
import { Metrics } from '../monitoring/metrics.js';
import { startTestServer, type TestServer } from '../test/support/test-server.js';
import { loadConfig } from './config.js';
import { ReadModelRetention } from './read-model-retention.js';

/**
 * The trading read model's retention on a schedule (ADR 032): off unless configured; when on, the
 * process holding its lock moves old closed orders to the archive at each run, logs and counts
 * what it moved, and the API stops answering them (but with `history=true`).
 */
describe('read model retention job', () => {
  const DAY = 86_400_000;
  let qcat: TestServer;
  const jobs: ReadModelRetention[] = [];

  /** A job over the test server's database, with its own log and metrics. */
  const job = (days: number | undefined, schedule = '* * * * * *') => {
    const lines: string[] = [];
    const metrics = new Metrics();
    const retention = new ReadModelRetention({
      pool: qcat.server.runtime.pool,
      connectionString: qcat.database.url,
      days,
      schedule,
      log: {
        info: (message) => lines.push(message),
        warn: (message) => lines.push(`WARN ${message}`),
      },
      metrics,
    });
    jobs.push(retention);
    return { retention, lines, metrics };
  };

  /** An order submitted, accepted and cancelled (closed) `daysAgo` days ago. */
  const closedOrder = async (id: string, daysAgo: number): Promise<void> => {
    const { commands, projections } = qcat.server.runtime;
    const time = Date.now() - daysAgo * DAY;
    const position = await placeOrder(commands, id, time, {
      closed: true,
      actor: 'retention-test',
    });
    expect(await projections.waitFor('trading', position, 10_000)).toBe(true);
  };
  const listed = async (query = ''): Promise<string[]> => {
    const response = await qcat.request('GET', `/api/v1/orders?limit=100${query}`);
    const body = (await response.json()) as { orders: { clientOrderId: string }[] };
    return body.orders.map((order) => order.clientOrderId);
  };

  beforeAll(async () => {
    qcat = await startTestServer('retention-job');
    await closedOrder('o-old', 400);
    await closedOrder('o-new', 1);
  });
  afterAll(async () => {
    for (const retention of jobs) await retention.stop();
    await qcat.stop();
  });

  it('schedules nothing while QCAT_READ_MODEL_RETENTION_DAYS is unset, and says so at start-up', async () => {
    const config = loadConfig({});
    const { retention, lines } = job(
      config.QCAT_READ_MODEL_RETENTION_DAYS,
      config.QCAT_READ_MODEL_RETENTION_SCHEDULE,
    );
    await retention.start();
    expect(retention.scheduled).toBe(false);
    expect(lines).toEqual([expect.stringMatching(/^read model retention: off /)]);
    // The server's own job, wired from the same (default) configuration.
    await qcat.server.runtime.readModelRetention.start();
    expect(qcat.server.runtime.readModelRetention.scheduled).toBe(false);
    expect(await listed()).toEqual(['o-old', 'o-new']);
  });

  it('moves old closed orders at its scheduled run, in the one process that leads it', async () => {
    expect(await listed()).toEqual(['o-old', 'o-new']); // cached now
    const leader = job(30);
    await leader.retention.start();
    expect(leader.lines[0]).toMatch(
      /^read model retention \(older than 30 days\): schedule '\* \* \* \* \* \*' \(UTC\), next .*; this process leads it$/,
    );
    const other = job(30);
    await other.retention.start();
    expect(other.lines[0]).toMatch(/another process leads it$/);

    await expect
      .poll(() => leader.lines.some((line) => line.includes('archived 1 orders')), {
        timeout: 10_000,
      })
      .toBe(true);
    expect(leader.lines).toContainEqual(
      expect.stringMatching(
        /^read model retention: trading: archived 1 orders, 0 fills and 0 valuations older than 30 days in \d+\.\d s$/,
      ),
    );
    await expect.poll(() => listed(), { timeout: 5000 }).toEqual(['o-new']);
    expect(await listed('&history=true')).toEqual(['o-old', 'o-new']);

    const text = await leader.metrics.registry.metrics();
    expect(text).toMatch(/^read_model_archived_rows_total\{table="orders"\} 1$/m);
    const last = /^read_model_retention_last_success_timestamp_seconds (\S+)$/m.exec(text);
    expect(Number(last?.[1])).toBeGreaterThan(Date.now() / 1000 - 60);
    // The other process never ran it.
    expect(other.lines).toHaveLength(1);
    expect(await other.metrics.registry.metrics()).toMatch(
      /^read_model_retention_last_success_timestamp_seconds 0$/m,
    );
  });
});
