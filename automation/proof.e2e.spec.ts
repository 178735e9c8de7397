import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyService } from '../api/auth/api-key-service.js';
import {
  ensureMarketSchema,
  MarketDataStore,
} from '../core/adapters/postgres/market-data-store.js';
import { migrate } from '../core/adapters/postgres/migrations.js';
import { PostgresEventStore } from '../core/adapters/postgres/postgres-event-store.js';
import { PostgresIdempotencyStore } from '../core/adapters/postgres/postgres-idempotency-store.js';
import type { Party } from '../core/approvals/approval.js';
import { CommandHandler } from '../core/commands/command-handler.js';
import type { RecordedEvent } from '../core/eventstore/event-store.js';
import { HOT_SYMBOLS_STREAM } from '../core/hot-symbols/ranking.js';
import { hotSymbolStream } from '../core/hot-symbols/tradable.js';
import { DEFAULT_INSTRUMENTS } from '../core/market/synthetic.js';
import type { Candle } from '../core/market/types.js';
import {
  approveAllPending,
  actionTable,
  approveSymbol,
  causationChain,
  client,
  joinWithExits,
  openCandidateOptimizations,
  proofMarket,
  releaseKillSwitch,
  startedInPaper,
  proofPolicy,
  reasonOf,
  settle,
  type Client,
} from '../test/support/automation-proof.js';
import { startQcat, type QcatProcess } from '../test/support/qcat-process.js';
import { createTestDatabase, type TestDatabase } from '../test/support/test-database.js';

/**
 * The proof of issue 19 (docs/automation.md, "How it is proven"): a real QCAT process (the run's
 * build, `qcat serve`) runs every process manager and the paper engine on the market's clock
 * (AUTOMATION_CLOCK=market, ADR 030) while this spec plays a synthetic market of 90 days, a day
 * per step, with a volume jump injected on SOLUSDT. All ten capabilities are on; a risk officer's
 * key approves what needs approval (the tradable list included). Each capability must act for its
 * reason, with its causation chain in the audit API; the process is killed with SIGKILL while a
 * new strategy's optimization runs, and restarted: no action repeated, none lost; then the kill
 * switch holds every capability from the next step on.
 */
const DAY = 86_400_000;
const HOUR = 3_600_000;
/** A Monday, 00:00 UTC: the market's first day. */
const START = Date.UTC(2026, 0, 5);
const DAYS = 90;
/** Stored at once before the first step: the look-back the ranking and the figures need. */
const HISTORY = 30;
/** The volume jump on day 33 (a Saturday): it makes SOLUSDT that day's hot symbol. */
const JUMP = { symbol: 'SOLUSDT', from: START + 33 * DAY + 4 * HOUR };
/** From this day the risk officer's elimination thresholds are strict enough to bite. */
const STRICT_DAY = 53;
/**
 * Capability 6's schedule: 00:00 UTC on the 1st and the 27th: it acts on 27 February (market day
 * 53, both strategies trading) and is due again on 1 March, under the kill switch.
 */
const PERIODIC = '0 0 1,27 * *';
/** A strategy joins the portfolio, with exit rules, this many days after it started in paper. */
const JOIN_AFTER = 4;
const SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'BNBUSDT', 'XRPUSDT', 'DOGEUSDT'];
const PORTFOLIO = 'paper-1h';
/** The process managers that tick (their clock is checked at each step). */
const TICKING = [
  'hot-symbols',
  'new-strategies',
  'periodic-optimizer',
  'underperformance-optimizer',
  'elimination',
  'allocation',
];

describe(
  'the ten automation capabilities on one market (issue 19 proof)',
  { timeout: 300_000 },
  () => {
    let database: TestDatabase;
    let pool: pg.Pool;
    let store: PostgresEventStore;
    let commands: CommandHandler;
    let market: MarketDataStore;
    let qcat: QcatProcess;
    let url = '';
    let risk: Client;
    let riskParty: Party;
    let analystParty: Party;
    let auditor: Client;
    let candles = new Map<number, Candle[]>();
    const all = () => store.readAll({ maxCount: 10_000_000 });
    const start = async () => {
      qcat = await startQcat({
        DATABASE_URL: database.url,
        AUTOMATION_CLOCK: 'market',
        AUTOMATION_TICK_MS: '50',
        ENGINE_POLL_MS: '50',
        // A member's allocated capital (equal weight, at most 0.2 of equity) is its capital request.
        PAPER_INITIAL_CASH: '50000',
        RATE_LIMIT_PER_MINUTE: '1000000',
        // A kill -9 in the middle of a tick leaves its keyed command claimed: the restarted
        // process's tick waits out the lease (57 s of a 60-s lease in one run) before it acts.
        // This market's commands take milliseconds; 10 s is still far above any of them.
        IDEMPOTENCY_LEASE_SECONDS: '10',
      });
      const listening = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(qcat.output());
      url = listening?.[1] ?? '';
    };
    const people = () => ({ commands, risk, riskParty, analystParty });
    const approvePending = (clock: number) => approveAllPending(people(), clock);

    beforeAll(async () => {
      candles = proofMarket({ start: START, days: DAYS, symbols: SYMBOLS, jump: JUMP });
      database = await createTestDatabase('automation_proof');
      pool = new pg.Pool({ connectionString: database.url, max: 4 });
      await migrate(pool);
      await ensureMarketSchema(pool);
      store = await PostgresEventStore.connect({ connectionString: database.url, poolSize: 3 });
      commands = new CommandHandler({
        eventStore: store,
        idempotency: new PostgresIdempotencyStore(store.pool),
      });
      market = new MarketDataStore(pool);
      await market.upsertInstruments(DEFAULT_INSTRUMENTS.filter((i) => SYMBOLS.includes(i.symbol)));
      const keys = new ApiKeyService(commands);
      const issued = {
        risk: await keys.issue('proof-risk', 'risk_officer', 'proof-setup'),
        analyst: await keys.issue('proof-analyst', 'analyst', 'proof-setup'),
        auditor: await keys.issue('proof-auditor', 'auditor', 'proof-setup'),
        risk2: await keys.issue('proof-risk-2', 'risk_officer', 'proof-setup'),
      };
      riskParty = { id: `apikey:${issued.risk.keyId}`, role: 'risk_officer' };
      analystParty = { id: `apikey:${issued.analyst.keyId}`, role: 'analyst' };
      await start();
      risk = client(() => url, issued.risk.token);
      auditor = client(() => url, issued.auditor.token);
      risk2 = client(() => url, issued.risk2.token);
      // The risk officer turns all ten on through the policy, with the thresholds of this run.
      const policy = proofPolicy(PERIODIC);
      for (const [capability, thresholds] of policy) {
        const answer = await risk.send('PUT', `/automation/${capability}`, {
          enabled: true,
          thresholds,
        });
        expect(answer.status, `${capability}: ${JSON.stringify(answer.body)}`).toBe(200);
      }
      const set = await risk.send('PUT', `/portfolios/${PORTFOLIO}/allocation/policy`, {
        method: 'equal_weight',
      });
      expect(set.status, JSON.stringify(set.body)).toBe(200);
      // In one go: the market's clock moves once, to the end of the history.
      await market.insertCandles(
        Array.from({ length: HISTORY }, (_, day) => candles.get(day) ?? []).flat(),
      );
      await settle({ pool, api: auditor, clock: START + HISTORY * DAY, ticking: TICKING });
    }, 300_000);
    afterAll(async () => {
      await qcat.stop();
      await store.close();
      await pool.end();
      await database.drop();
    });

    /** What each capability did: its actions (events), as the audit trail holds them. */
    const acted = async () => {
      const events = await all();
      const by = (actor: string, type: string) =>
        events.filter((e) => e.metadata.actor === actor && e.type === type);
      const engine = (type: string) => events.filter((e) => e.type === type);
      return {
        events,
        1: by('automation:underperformance-optimizer', 'OptimizationRequested'),
        2: by('automation:optimization-adoption', 'StrategyParameterChangeRequested'),
        3: by('automation:allocation', 'AllocationProposed'),
        4: engine('EngineCycleOpened').filter(
          (e) => (e.data as { config: { sizing?: unknown } | null }).config?.sizing,
        ),
        5: engine('ExitTriggered').filter((e) =>
          ['STOP_LOSS', 'TAKE_PROFIT'].includes((e.data as { kind: string }).kind),
        ),
        6: by('automation:periodic-optimizer', 'OptimizationRequested'),
        7: by('automation:elimination', 'StrategySuspended'),
        8: by('automation:new-strategies', 'StrategyCreated'),
        9: engine('ExitTriggered').filter(
          (e) => (e.data as { kind: string }).kind === 'TRAILING_STOP',
        ),
        10: by('automation:hot-symbols', 'HotSymbolsRanked'),
      };
    };
    let wall = 0;
    let killedDuring = '';
    let runningAtKill = 0;
    let engagedAt: bigint | null = null;
    let held: { clock: number; events: RecordedEvent[] } | undefined;
    let risk2: Client;
    const release = () => releaseKillSwitch(risk, risk2, store);

    it('plays the market a day a step: each of the ten acts for its reason, its causes in the audit API', async () => {
      const started = Date.now();
      const joined = new Set<string>();
      for (let day = HISTORY; day < DAYS; day++) {
        await market.insertCandles(candles.get(day) ?? []);
        const clock = START + (day + 1) * DAY;
        clockNow = clock;
        // The first Monday with a symbol on the list: kill -9 while the candidate's optimization
        // (the week's tick requested it) runs, then start QCAT again.
        const monday = new Date(clock).getUTCDay() === 1;
        if (
          !killedDuring &&
          monday &&
          (await store.readStream(hotSymbolStream('SOLUSDT'))).length
        ) {
          const deadline = Date.now() + 60_000;
          while ((await openCandidates()) === 0 && Date.now() < deadline)
            await new Promise((r) => setTimeout(r, 5));
          await qcat.crash();
          killedDuring = new Date(clock).toISOString();
          runningAtKill = await openCandidates();
          await start();
        }
        await settle({ pool, api: auditor, clock, ticking: TICKING });
        while ((await approvePending(clock)) > 0)
          await settle({ pool, api: auditor, clock, ticking: TICKING });
        const ranked = (await store.readStream(HOT_SYMBOLS_STREAM)).at(-1);
        const recommended = (ranked?.data as { recommended?: string[] } | undefined)?.recommended;
        const listed = await store.readStream(hotSymbolStream('SOLUSDT'));
        if (ranked && listed.length === 0 && recommended?.includes('SOLUSDT'))
          await approveSymbol(people(), ranked, 'SOLUSDT', clock);
        // A strategy capability 8 started joins the portfolio once it has a few days of valuations
        // (capability 3 proposes, 4 sizes), and gets exit rules from the risk officer (5, 9).
        for (const started of await startedStrategies())
          if (!joined.has(started.strategyId) && clock - started.at >= JOIN_AFTER * DAY) {
            joined.add(started.strategyId);
            await join(started.strategyId);
          }
        if (engagedAt !== null && !held) {
          // The step under the kill switch is over: what it wrote, then the release (four eyes).
          held = { clock, events: await store.readAll({ after: engagedAt, maxCount: 100_000 }) };
          await release();
        }
        if (day === STRICT_DAY) {
          // Elimination, 6 and 10 are due at the next step: the kill switch must hold them all.
          const answer = await risk.send('PUT', '/automation/elimination', {
            thresholds: { sharpeBelow: 10 },
          });
          expect(answer.status).toBe(200);
          const engage = await risk.send('POST', '/risk/kill-switch', { reason: 'proof' });
          expect(engage.status, JSON.stringify(engage.body)).toBe(200);
          engagedAt = await store.headPosition();
        }
        // What the people did is read by every projection before the next day's ticks.
        await settle({ pool, api: auditor, clock, ticking: TICKING });
      }
      wall = Date.now() - started;
      expect(killedDuring).not.toBe('');
      const did = await acted();
      const rows = await actionTable(auditor, did);
      console.log(
        `proof: ${String(DAYS - HISTORY)} market days played in ${String(wall)} ms (kill -9 at ${killedDuring})`,
      );
      console.table(rows);
      for (const row of rows)
        expect(row.actions, `capability ${String(row.capability)}`).toBeGreaterThan(0);
      const chainOf = (n: keyof typeof did) => causationChain(auditor, did[n][0]!);
      // 10: the day's tick ranked, and the injected symbol was recommended.
      expect((await chainOf(10)).at(-1)).toMatch(/^tick:hot-symbols:/);
      expect(
        did[10].some((e) => (e.data as { recommended: string[] }).recommended.includes('SOLUSDT')),
      ).toBe(true);
      // 8: only from the tradable list (SOLUSDT, approved by the risk officer), through the gate.
      expect(did[8].map((e) => (e.data as { symbols: string[] }).symbols)).toEqual([
        ['SOLUSDT'],
        ['SOLUSDT'],
      ]);
      expect(await chainOf(8)).toEqual([
        'StrategyCreated by automation:new-strategies',
        'OptimizationCompleted by automation:optimizer',
        'OptimizationRequested by automation:new-strategies',
        expect.stringMatching(/^tick:new-strategies:2026-02-09$/) as string,
      ]);
      // 6 and 1: their ticks; 1 names the figures that fell short.
      expect((await chainOf(6)).at(-1)).toMatch(/^tick:periodic-optimizer:2026-02-27/);
      expect((did[1][0]?.data as { trigger: { type: string } }).trigger.type).toBe(
        'underperformance',
      );
      expect((await chainOf(1)).at(-1)).toMatch(/^tick:underperformance-optimizer:/);
      // 2: the result of 1 or 6 that passed the gate.
      expect((await chainOf(2)).slice(1, 3)).toEqual([
        'OptimizationCompleted by automation:optimizer',
        expect.stringMatching(
          /^OptimizationRequested by automation:(periodic|underperformance)-optimizer$/,
        ) as string,
      ]);
      // 3: a membership (the risk officer's) or its hourly check; 7: the day's figures, breached.
      expect((await chainOf(3)).at(-1)).toMatch(/^(tick:allocation:|[0-9a-f-]{36}$)/);
      expect(reasonOf(did[7][0]!)).toMatch(/^SHARPE_BELOW: /);
      expect((await chainOf(7)).at(-1)).toMatch(/^tick:elimination:/);
      expect(did.events.filter((e) => e.type === 'StrategyRetired')).toHaveLength(2);
      // No risk limit was breached: no breaker fired; an order was denied only by the kill switch.
      expect(did.events.filter((e) => e.type === 'RiskTriggerFired').map(reasonOf)).toEqual([]);
      for (const denied of did.events.filter((e) => e.type === 'OrderDenied'))
        expect(reasonOf(denied)).toMatch(/^KILL_SWITCH_ENGAGED/);
    });

    it('the kill -9 and restart repeated no action and lost none', async () => {
      const { events } = await acted();
      const actions = events.filter(
        (e) => e.metadata.actor.startsWith('automation:') && e.type !== 'OptimizationProgressed',
      );
      // Each cause produced each of its actions once (a hold: each held command once).
      const keys = actions.map((e) => {
        const { command, streamId } = e.data as { command?: string; streamId?: string };
        const what = e.type === 'AutomationActionHeld' ? `${command ?? ''} ${streamId ?? ''}` : '';
        return `${e.metadata.actor} ${e.metadata.causationId ?? ''} ${e.streamId} ${e.type} ${what}`;
      });
      expect(keys.filter((k, i) => keys.indexOf(k) !== i)).toEqual([]);
      // One ranking for each day played, the day of the kill included.
      const slots = events
        .filter((e) => e.type === 'HotSymbolsRanked')
        .map((e) => e.metadata.causationId);
      const clocks = Array.from(
        { length: DAYS - HISTORY + 1 },
        (_, d) => START + (HISTORY + d) * DAY,
      );
      const slot = (c: number) => `tick:hot-symbols:${new Date(c).toISOString()}`;
      // The day under the kill switch is held (the third test); released within its hour, its
      // ranking may still be written, once.
      const heldSlot = slot(held?.clock ?? 0);
      expect(slots.filter((s) => s !== heldSlot)).toEqual(
        clocks.filter((c) => c !== held?.clock).map(slot),
      );
      expect(slots.filter((s) => s === heldSlot).length).toBeLessThanOrEqual(1);
      // Every optimization requested completed exactly once, the one running at the kill too.
      const ended = (id: string) =>
        events.filter(
          (e) =>
            e.streamId === id && ['OptimizationCompleted', 'OptimizationFailed'].includes(e.type),
        );
      const requested = events.filter((e) => e.type === 'OptimizationRequested');
      for (const r of requested)
        expect(ended(r.streamId).map((e) => e.type)).toEqual(['OptimizationCompleted']);
      // The candidate killed mid-run (its optimization running) became one strategy, started once.
      expect(runningAtKill).toBe(1);
      const candidates = requested.filter((e) => e.metadata.actor === 'automation:new-strategies');
      expect(candidates).toHaveLength(2);
      expect(events.filter((e) => e.type === 'StrategyPaperTradingStarted')).toHaveLength(2);
    });

    it('the kill switch, engaged on a day three capabilities were due, held them all that step', async () => {
      expect(held).toBeDefined();
      const events = held?.events ?? [];
      const automation = events.filter((e) => e.metadata.actor.startsWith('automation:'));
      expect(new Set(automation.map((e) => e.type))).toEqual(new Set(['AutomationActionHeld']));
      for (const hold of automation)
        expect((hold.data as { reason: string }).reason).toMatch(/^KILL_SWITCH_ENGAGED: .*proof/);
      // The day's ranking (10), the suspensions the strict thresholds call for (7), the 1 March
      // optimization (6): each held, with the slot it would have acted on as its cause.
      const managers = new Set(automation.map((e) => (e.data as { manager: string }).manager));
      for (const manager of ['hot-symbols', 'elimination', 'periodic-optimizer'])
        expect(managers).toContain(manager);
      // The engine adds no risk: an order that would add was denied by the kill switch.
      const adding = events
        .filter(
          (e) => e.type === 'OrderSubmitted' && !(e.data as { reduceOnly: boolean }).reduceOnly,
        )
        .map((e) => e.streamId);
      const outcome = (stream: string) =>
        events
          .filter((e) => e.streamId === stream && e.type !== 'OrderSubmitted')
          .map((e) => `${e.type} ${reasonOf(e)}`);
      for (const order of adding)
        expect(outcome(order)).toEqual([expect.stringMatching(/^OrderDenied KILL_SWITCH_ENGAGED/)]);
      // Released, they act again: elimination suspends the next day.
      const suspended = (await acted())[7];
      expect(suspended.every((e) => e.position > (engagedAt ?? 0n))).toBe(true);
    });

    /** The strategies started in paper, with the market instant of their start (the step's clock). */
    const startDays = new Map<string, number>();
    let clockNow = 0;
    async function startedStrategies(): Promise<{ strategyId: string; at: number }[]> {
      return (await startedInPaper(pool)).map((id) => {
        if (!startDays.has(id)) startDays.set(id, clockNow);
        return { strategyId: id, at: startDays.get(id) ?? clockNow };
      });
    }
    const join = (strategyId: string) => joinWithExits(risk, PORTFOLIO, strategyId);
    const openCandidates = () => openCandidateOptimizations(pool);
  },
);
