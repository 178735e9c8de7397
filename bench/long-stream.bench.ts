/**
 * Command latency on long streams (issue 22, ADRs 012 and 032): a command on a desk, a risk
 * trading-state, a strategy and a portfolio stream of 100, 10,000 and 100,000 events, in four
 * modes: snapshots off; on; on with an `Idempotency-Key` found by id (`keyed`, ADR 032); on with a
 * key and the whole-stream read keyed commands did before ADR 032 (`keyed-scan`). The reference is
 * the same command in the same mode on the 100-event stream in the same run: the target is that a
 * command on the 100,000-event stream costs at most 2× that, with snapshots, keyed or not.
 *
 *   npm run bench:streams
 *   npm run bench:streams -- --sizes=100,10000,100000 --commands=30
 *   npm run bench:streams -- --kinds=desk --commands=10     (one stream kind, a short run)
 *   npm run bench:streams -- --modes=on,keyed               (without the slow full reads)
 *
 * Server: BENCH_DATABASE_URL, else TEST_DATABASE_URL, else an embedded PostgreSQL. The last line
 * of output is one JSON object with every figure.
 */
import pg from 'pg';
import { PostgresEventIdIndex } from '../core/adapters/postgres/postgres-event-ids.js';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { PostgresSnapshotStore } from '../core/adapters/postgres/postgres-snapshot-store.js';
import { CommandHandler } from '../core/commands/command-handler.js';
import { InMemoryIdempotencyStore } from '../core/commands/idempotency.js';
import type { Decider, DomainEvent } from '../core/decider.js';
import { desk } from '../core/engine/desk.js';
import type { NewEvent } from '../core/eventstore/event-store.js';
import { defaultPolicy } from '../core/portfolio/policy.js';
import { portfolios } from '../core/portfolio/portfolio.js';
import { tradingStates, type RiskTriggerFiredData } from '../core/risk/trading-state.js';
import { snapshotSchemaOf } from '../core/snapshot-schemas.js';
import { strategies } from '../core/strategies/strategy.js';
import {
  LatencySamples,
  cleanup,
  createDatabase,
  describeServer,
  formatInt,
  formatMs,
  formatRatio,
  listOption,
  now,
  numberOption,
  printTable,
  round,
  serverInfo,
  startServer,
} from './support.js';

type AnyDecider = Decider<unknown, unknown, DomainEvent>;
const T = 1_700_000_000_000;

interface Kind {
  name: string;
  decider: AnyDecider;
  stream: (size: number) => string;
  /** Seed event number i. */
  event: (i: number) => NewEvent;
  /** Measured command number i (each writes one event). */
  command: (i: number) => unknown;
}

const trigger = (i: number): RiskTriggerFiredData => ({
  triggerId: `daily_loss-strategy-s${i}-${T + i}`,
  rule: 'daily_loss',
  scopeType: 'strategy',
  scopeId: 'bench',
  threshold: 0.1,
  observed: 0.12,
  reference: 1000,
  value: 880,
  window: { from: T + i - 1000, to: T + i },
  action: 'REDUCING',
  until: T + i + 1,
  time: T + i,
});

const risk = { id: 'apikey:risk1', role: 'risk_officer' } as const;
const AT = '2026-12-07T06:00:00.000Z';
const failure = (portfolioId: string, proposalId: string) => ({
  portfolioId,
  proposalId,
  trigger: { type: 'schedule' as const, detail: 'bench', figures: {} },
  method: 'equal_weight' as const,
  code: 'NO_DATA',
  reason: 'bench',
  at: AT,
});

const KINDS: Kind[] = [
  {
    name: 'desk (manual cancels)',
    decider: desk,
    stream: (size) => `desk-bench${size}`,
    event: (i) => ({
      type: 'ManualCancelRequested',
      data: { clientOrderId: `m-seed${i}`, reason: 'bench', requestedAt: T + i },
      metadata: { actor: 'bench' },
    }),
    command: (i) => ({
      type: 'RequestCancel',
      clientOrderId: `m-run${i}`,
      reason: 'bench',
      requestedAt: T + i,
    }),
  },
  {
    name: 'risk trading state',
    decider: tradingStates,
    stream: (size) => `risk-state-strategy-bench${size}`,
    event: (i) => ({
      type: 'RiskTriggerFired',
      data: trigger(i),
      metadata: { actor: 'bench' },
    }),
    command: (i) => ({ type: 'FireTrigger', trigger: trigger(10_000_000 + i) }),
  },
  {
    // A draft edited over and over: the fold costs what a strategy's parameter changes cost.
    name: 'strategy (edits)',
    decider: strategies,
    stream: (size) => `strategy-bench${size}`,
    event: (i): NewEvent =>
      i === 0
        ? {
            type: 'StrategyCreated',
            data: {
              strategyId: 'bench',
              name: 'bench',
              description: '',
              kind: 'sma_crossover',
              symbols: ['BTCUSDT'],
              timeframe: '1h',
              parameters: { fastPeriod: 10, slowPeriod: 30, positionFraction: 0.5 },
              capitalRequest: 10_000,
              owner: { id: 'apikey:trader1', role: 'trader' },
              parameterVersion: 1,
            },
            metadata: { actor: 'bench' },
          }
        : {
            type: 'StrategyEdited',
            data: { strategyId: 'bench', changes: { name: `seed ${i}` } },
            metadata: { actor: 'bench' },
          },
    command: (i) => ({ type: 'EditStrategy', strategyId: 'bench', changes: { name: `run ${i}` } }),
  },
  {
    // The rebalancer's record of proposals that could not be made.
    name: 'portfolio (proposals)',
    decider: portfolios,
    stream: (size) => `portfolio-bench${size}`,
    event: (i): NewEvent =>
      i === 0
        ? {
            type: 'PortfolioPolicySet',
            data: { portfolioId: 'bench', policy: defaultPolicy(), version: 1, by: risk, at: AT },
            metadata: { actor: 'bench' },
          }
        : {
            type: 'AllocationProposalFailed',
            data: failure('bench', `seed-${i}`),
            metadata: { actor: 'bench' },
          },
    command: (i) => ({ type: 'RecordProposalFailure', ...failure('bench', `run-${i}`) }),
  },
];

/** off: no snapshots; on: snapshots; keyed: on, with a key found by id; keyed-scan: by a read. */
const MODES = ['off', 'on', 'keyed', 'keyed-scan'] as const;
type Mode = (typeof MODES)[number];

async function seed(store: PostgresEventStore, kind: Kind, size: number): Promise<void> {
  const stream = kind.stream(size);
  for (let from = 0; from < size; from += 1000) {
    const events: NewEvent[] = [];
    for (let i = from; i < Math.min(size, from + 1000); i++) events.push(kind.event(i));
    await store.appendToStream(stream, events);
  }
}

interface Figure {
  kind: string;
  size: number;
  mode: Mode;
  p50Ms: number;
  p90Ms: number;
  firstMs: number;
}

async function measure(
  handler: CommandHandler,
  kind: Kind,
  size: number,
  commands: number,
  offset: number,
  keyed: boolean,
): Promise<{ samples: LatencySamples; firstMs: number }> {
  const samples = new LatencySamples();
  let firstMs = 0;
  for (let i = 0; i < commands; i++) {
    const start = now();
    const key = keyed ? { idempotencyKey: `key-${kind.stream(size)}-${offset + i}` } : {};
    await handler.handle(kind.decider, kind.stream(size), kind.command(offset + i) as never, {
      actor: 'bench',
      ...key,
    });
    const ms = now() - start;
    // The first command with snapshots on folds the whole stream once and writes the snapshot.
    if (i === 0) firstMs = ms;
    else samples.add(ms);
  }
  return { samples, firstMs };
}

async function main(): Promise<Record<string, unknown>> {
  const sizes = listOption('sizes', '100,10000,100000').map(Number);
  const commands = numberOption('commands', 30);
  const only = listOption('kinds', 'desk,risk,strategy,portfolio');
  const modes = listOption('modes', MODES.join(',')).filter((mode): mode is Mode =>
    (MODES as readonly string[]).includes(mode),
  );
  const kinds = KINDS.filter((kind) => only.some((name) => kind.name.startsWith(name)));
  const server = await startServer();
  const info = await serverInfo(server);
  console.log(`bench:streams — ${describeServer(server, info)}`);
  const database = await createDatabase(server, 'streams');
  const store = await PostgresEventStore.connect({ connectionString: database.url });
  const pool = new pg.Pool({ connectionString: database.url, max: 2 });
  pool.on('error', () => undefined);
  const figures: Figure[] = [];
  try {
    const plain = new CommandHandler({
      eventStore: store,
      idempotency: new InMemoryIdempotencyStore(),
    });
    const snapshots = { store: new PostgresSnapshotStore(pool), schemaOf: snapshotSchemaOf };
    const snapshotted = new CommandHandler({
      eventStore: store,
      idempotency: new InMemoryIdempotencyStore(),
      snapshots,
    });
    const keyed = new CommandHandler({
      eventStore: store,
      idempotency: new InMemoryIdempotencyStore(),
      snapshots,
      eventIds: new PostgresEventIdIndex(pool),
    });
    // Before ADR 032: snapshots on, but a keyed command's earlier events found by a full read.
    const scanning = new CommandHandler({
      eventStore: store,
      idempotency: new InMemoryIdempotencyStore(),
      snapshots,
    });
    const handlers: Record<Mode, CommandHandler> = {
      off: plain,
      on: snapshotted,
      keyed,
      'keyed-scan': scanning,
    };
    for (const kind of kinds) {
      for (const size of sizes) {
        const started = now();
        await seed(store, kind, size);
        console.log(
          `  ${kind.name}: ${formatInt(size)} events seeded in ${((now() - started) / 1000).toFixed(1)} s`,
        );
        let offset = size * 10;
        for (const mode of modes) {
          const { samples, firstMs } = await measure(
            handlers[mode],
            kind,
            size,
            commands,
            offset,
            mode.startsWith('keyed'),
          );
          offset += commands;
          const stats = samples.stats();
          figures.push({
            kind: kind.name,
            size,
            mode,
            p50Ms: stats.p50Ms,
            p90Ms: stats.p90Ms,
            firstMs,
          });
        }
      }
    }
  } finally {
    await store.close();
    await pool.end();
    await database.drop();
  }
  console.log('');
  const reference = (figure: Figure): Figure | undefined =>
    figures.find((f) => f.kind === figure.kind && f.mode === figure.mode && f.size === sizes[0]);
  printTable(
    ['stream', 'events', 'mode', 'p50 ms', 'p90 ms', 'first ms', `p50 / ${sizes[0]}-event`],
    figures.map((figure) => [
      figure.kind,
      formatInt(figure.size),
      figure.mode,
      formatMs(figure.p50Ms),
      formatMs(figure.p90Ms),
      formatMs(figure.firstMs),
      formatRatio(figure.p50Ms / (reference(figure)?.p50Ms ?? figure.p50Ms)),
    ]),
  );
  const largest = sizes.at(-1) ?? 0;
  const targets = kinds.flatMap((kind) =>
    modes
      .filter((mode) => mode === 'on' || mode === 'keyed')
      .map((mode) => {
        const at = figures.find(
          (f) => f.kind === kind.name && f.mode === mode && f.size === largest,
        );
        const base = at ? reference(at) : undefined;
        const ratio = at && base ? at.p50Ms / base.p50Ms : null;
        const met = ratio !== null && ratio <= 2;
        console.log(
          `  ${kind.name}, ${mode}: ${formatInt(largest)}-event stream at ${ratio === null ? '?' : formatRatio(ratio)} of the ${sizes[0]}-event one — target ≤ 2.00× ${met ? 'met' : 'MISSED'}`,
        );
        return { kind: kind.name, mode, ratio: ratio === null ? null : round(ratio, 3), met };
      }),
  );
  return {
    benchmark: 'streams',
    server: { version: info.version, source: server.source, cpus: info.cpus },
    commands,
    figures: figures.map((f) => ({
      ...f,
      p50Ms: round(f.p50Ms, 3),
      p90Ms: round(f.p90Ms, 3),
      firstMs: round(f.firstMs, 3),
    })),
    targets,
  };
}

let summary: Record<string, unknown> | undefined;
try {
  summary = await main();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  await cleanup();
}
if (summary) console.log(`\n${JSON.stringify(summary)}`);
