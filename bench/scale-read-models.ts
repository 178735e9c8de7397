/**
 * `npm run bench:scale -- --read-models [--quick] [--orders=100000,400000] [--days=30]`
 * (issue 22 item 4, ADR 032): the trading read model as the book ages. At each checkpoint the
 * read model holds that many orders (with 2.5 fills and 1.5 valuations per order, the log mix's
 * ratios), 1,000 orders a day ending now, so a larger checkpoint is a longer history at the same
 * daily rate. Measured at each: the recent queries a trading screen makes (last 7 days' orders,
 * fills, equity curve of one portfolio) with every row hot, then again after the retention job
 * moved what is older than `--days` to the archive; a history query and a look-up by id of an
 * archived order; the job's own time. Rows are written server-side into the projection's tables
 * (as a rebuild fills them), not through the projection. The reference of each figure is its value
 * at the first checkpoint, in the same run.
 */
import pg from 'pg';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { PostgresTarget } from '../projections/postgres-target.js';
import { archiveTrading } from '../projections/retention-queries.js';
import { tradingProjection } from '../projections/trading.js';
import { TradingQueries } from '../projections/trading-queries.js';
import {
  LatencySamples,
  createDatabase,
  formatInt,
  formatMs,
  formatRatio,
  listOption,
  now,
  numberOption,
  printTable,
  round,
  type BenchServer,
} from './support.js';

const DAY = 86_400_000;
const PER_DAY = 1000;
const PORTFOLIOS = 10;
/** Positions grow with time, as in the log: the newest row has the highest. */
const TOP = 10_000_000_000;

interface Figures {
  orders: number;
  recentOrdersAllHotMs: number;
  recentFillsAllHotMs: number;
  recentEquityAllHotMs: number;
  archiveSeconds: number;
  hotOrders: number;
  recentOrdersMs: number;
  recentFillsMs: number;
  recentEquityMs: number;
  historyOrdersMs: number;
  archivedLookupMs: number;
}

async function p50(samples: number, run: () => Promise<unknown>): Promise<number> {
  const latencies = new LatencySamples();
  await run(); // warm-up
  for (let i = 0; i < samples; i++) {
    const start = now();
    await run();
    latencies.add(now() - start);
  }
  return latencies.stats().p50Ms;
}

/** Orders (from, to] by age rank: order n was submitted n / PER_DAY days before `end`. */
async function fill(pool: pg.Pool, schema: string, from: number, to: number, end: number) {
  const at = `to_timestamp((${end} - (n::float8 / ${PER_DAY}) * ${DAY}) / 1000.0)`;
  await pool.query(
    `INSERT INTO ${schema}.orders
       SELECT 'o-' || n, 'p-' || (n % ${PORTFOLIOS}), 's-' || (n % 100), 'SYM' || (n % 5),
              CASE WHEN n % 2 = 0 THEN 'buy' ELSE 'sell' END, 'market', 1, NULL, NULL, false,
              CASE WHEN n < 50 THEN 'accepted' WHEN n % 20 = 0 THEN 'cancelled' ELSE 'filled' END,
              1, 100, NULL, 'strategy', 'bench', ${at}, ${at}, ${TOP} - n, ${TOP} - n
         FROM generate_series($1::bigint + 1, $2::bigint) AS n`,
    [from, to],
  );
  // 2.5 fills per order (5 per 2 orders), 1.5 valuations per order, by the same clock.
  await pool.query(
    `INSERT INTO ${schema}.fills
       SELECT 'f-' || n || '-' || k, 'o-' || n, 'p-' || (n % ${PORTFOLIOS}), 's-' || (n % 100),
              'SYM' || (n % 5), 'buy', 100, 0.4, 40, 0.02, 'USDT', 'taker', 0,
              to_timestamp((${end} - (n::float8 / ${PER_DAY}) * ${DAY}) / 1000.0) + k * interval '1 ms',
              ${TOP} - (n * 3 + k)
         FROM generate_series($1::bigint + 1, $2::bigint) AS n,
              generate_series(0, 2) AS k
        WHERE k < 2 OR n % 2 = 0`,
    [from, to],
  );
  await pool.query(
    `INSERT INTO ${schema}.portfolio_equity
       SELECT 'p-' || (m % ${PORTFOLIOS}),
              to_timestamp((${end} - (m::float8 / ${PER_DAY * 1.5}) * ${DAY}) / 1000.0),
              100000 + m % 1000, 50000, ${TOP} - m
         FROM generate_series(($1::bigint * 3) / 2 + 1, ($2::bigint * 3) / 2) AS m`,
    [from, to],
  );
  await pool.query(`ANALYZE ${schema}.orders, ${schema}.fills, ${schema}.portfolio_equity`);
}

export async function readModelsBench(
  server: BenchServer,
  quick: boolean,
): Promise<Record<string, unknown>> {
  const checkpoints = listOption('orders', quick ? '100000,400000' : '250000,1000000,2000000').map(
    Number,
  );
  const days = numberOption('days', 30);
  const samples = numberOption('samples', 30);
  console.log(
    `read models: ${checkpoints.map(formatInt).join(', ')} orders (${PER_DAY}/day), retention ${days} days`,
  );
  const started = now();
  const results: Figures[] = [];
  for (const orders of checkpoints) {
    // A database per checkpoint: the same history, longer, not one grown and archived before.
    const database = await createDatabase(server, 'readmodels');
    const store = await PostgresEventStore.connect({ connectionString: database.url });
    const pool = new pg.Pool({ connectionString: database.url, max: 2 });
    pool.on('error', () => undefined);
    try {
      const target = new PostgresTarget(store.pool, tradingProjection);
      await target.ensure();
      const { rows } = await pool.query<{ generation: number }>(
        "SELECT generation FROM qcat_projections WHERE name = 'trading'",
      );
      const schema = `qcat_p_trading_${rows[0]?.generation ?? 1}`;
      const end = Date.now();
      const fillStart = now();
      for (let from = 0; from < orders; from += 250_000)
        await fill(pool, schema, from, Math.min(orders, from + 250_000), end);
      console.log(
        `  ${formatInt(orders)} orders and their fills and valuations written in ${((now() - fillStart) / 1000).toFixed(1)} s`,
      );
      const queries = new TradingQueries(pool);
      const week = new Date(end - 7 * DAY);
      const year = new Date(end - 365 * DAY);
      let k = 0;
      const portfolio = () => `p-${k++ % PORTFOLIOS}`;
      const recent = async () => ({
        orders: await p50(samples, () =>
          queries.orders({ portfolioId: portfolio(), from: week, limit: 100 }),
        ),
        fills: await p50(samples, () =>
          queries.fills({ portfolioId: portfolio(), from: week, limit: 100 }),
        ),
        equity: await p50(samples, () =>
          queries.equity(portfolio(), { from: week, interval: '1 hour', limit: 1000 }),
        ),
      });
      const before = await recent();
      const archiveStart = now();
      await archiveTrading(pool, new Date(end - days * DAY));
      const archiveSeconds = (now() - archiveStart) / 1000;
      await pool.query(`ANALYZE ${schema}.orders, ${schema}.fills, ${schema}.portfolio_equity`);
      const hot = await pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM qcat_read.orders',
      );
      const after = await recent();
      const historyOrdersMs = await p50(samples, () =>
        queries.orders({ portfolioId: portfolio(), from: year, limit: 100, history: true }),
      );
      const archivedLookupMs = await p50(samples, () =>
        queries.order(`o-${orders - 1 - (k++ % 1000)}`),
      );
      results.push({
        orders,
        recentOrdersAllHotMs: before.orders,
        recentFillsAllHotMs: before.fills,
        recentEquityAllHotMs: before.equity,
        archiveSeconds,
        hotOrders: hot.rows[0]?.n ?? 0,
        recentOrdersMs: after.orders,
        recentFillsMs: after.fills,
        recentEquityMs: after.equity,
        historyOrdersMs,
        archivedLookupMs,
      });
    } finally {
      await pool.end();
      await store.close();
      await database.drop();
    }
  }
  const first = results[0]!;
  const keys: [string, keyof Figures][] = [
    ['recent orders page, all hot', 'recentOrdersAllHotMs'],
    ['recent fills page, all hot', 'recentFillsAllHotMs'],
    ['recent equity curve, all hot', 'recentEquityAllHotMs'],
    [`recent orders page, ${days}-day retention`, 'recentOrdersMs'],
    [`recent fills page, ${days}-day retention`, 'recentFillsMs'],
    [`recent equity curve, ${days}-day retention`, 'recentEquityMs'],
    ['orders page over a year (history: hot + archive)', 'historyOrdersMs'],
    ['look-up of an archived order by id', 'archivedLookupMs'],
  ];
  console.log('');
  printTable(
    ['figure (p50 ms)', ...results.map((r) => `${formatInt(r.orders)} orders`), 'last / first'],
    [
      ...keys.map(([label, key]) => [
        label,
        ...results.map((r) => formatMs(r[key])),
        formatRatio(results.at(-1)![key] / first[key]),
      ]),
      ['hot orders after retention', ...results.map((r) => formatInt(r.hotOrders)), ''],
      [
        'retention job (s)',
        ...results.map((r) => r.archiveSeconds.toFixed(1)),
        formatRatio(results.at(-1)!.archiveSeconds / first.archiveSeconds),
      ],
    ],
  );
  console.log(`  ${((now() - started) / 1000).toFixed(0)} s in all`);
  return {
    benchmark: 'scale-read-models',
    quick,
    days,
    checkpoints: results.map((r) =>
      Object.fromEntries(
        Object.entries(r).map(([key, value]: [string, number]) => [key, round(value, 3)]),
      ),
    ),
  };
}
