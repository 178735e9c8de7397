// Under 400 lines without comments (what the max-lines rule counts): the paper engine's
// cycle (load, plan, apply, record); planning and a cycle's outputs are apart (below).
// One write-ahead-logged cycle (ADR 008) with recovery and recorded inputs. Its ports are in
// engine-ports.ts, its record in cycle-record.ts (ADR 028), its planning step (the configuration
// asked for, and how a new one takes over the state) in plan.ts, and the events a cycle appends
// (streams, desk orders, holds, the valuation, their ids) in cycle-output.ts.
/**
 * The live paper engine: one per portfolio (`paper-<timeframe>`). Each cycle takes the bars of one
 * bar time (and the manual orders and cancels waiting in the portfolio's desk inbox) through the
 * same `Stepper` the backtester uses, and appends the resulting order, position, cash and
 * valuation events. ADR 008 has the design; the short version:
 *
 * - **Write-ahead log.** Before a cycle changes anything it appends `EngineCycleOpened` to
 *   `engine-<portfolioId>` with everything the cycle depends on: the candles, the range of desk
 *   events it takes in, and the configuration when it changed. The expected revision is the cycle
 *   number, so two engines cannot both write a cycle (the loser stops).
 * - **Deterministic output.** The cycle's events get ids derived from (portfolio, cycle, index),
 *   and are appended stream by stream; re-appending them is a no-op (event store idempotency).
 * - **Recovery.** A snapshot of the engine state is saved after cycles; on start the engine loads
 *   it and replays every cycle recorded after it from the write-ahead log, re-appending their
 *   events. A cycle cut short by kill -9 is thereby completed exactly once: no lost and no
 *   duplicate orders or fills, and resting orders are back in the venue state.
 *
 * No clock and no randomness here: times come from the candles, ids from the inputs.
 */
import { domainEventOf } from '../eventstore/typed-events.js';
import { engineCycleOpened, type CycleRecord } from './cycle-record.js';
import { ConcurrencyConflictError, QcatError } from '../errors.js';
import type { EventMetadata, RecordedEvent } from '../eventstore/event-store.js';
import type { Candle } from '../market/types.js';
import { TIMEFRAME_MS } from '../market/types.js';
import { Stepper, type EngineState, type TradingEvent } from '../trading/stepper.js';
import { createRiskCheck, type RiskSnapshot } from '../risk/checks.js';
import type { Capability } from '../capabilities/capabilities.js';
import { ALL_ON } from '../capabilities/engine.js';
import { deskStream, desk as deskDecider } from './desk.js';
import { headroomFrom } from './allocation.js';
import {
  afterBars,
  initialRiskState,
  type EngineRiskState,
  type RiskStep,
} from './risk-control.js';
import {
  byStream,
  heldOutput,
  numberOutputs,
  streamOf,
  takeDesk,
  valuationOf,
  type Output,
} from './cycle-output.js';
import { asRecorded, carryOver, planConfig, sameJson } from './plan.js';
import type { PortfolioConfig, EngineOptions } from './engine-ports.js';

export * from './engine-ports.js';

export const engineStream = (portfolioId: string): string => `engine-${portfolioId}`;
/** Valuations of a portfolio: category `position`, so they are on the `positions` feed. */
export const valuationStream = (portfolioId: string): string => `position-${portfolioId}`;

export const ENGINE_ACTOR = 'system:paper-engine';

export type { CycleRecord } from './cycle-record.js';

/** The record a cycle was applied from: its event id, and the correlation of its outputs. */
type Origin = { eventId: string; correlationId?: string | undefined };

/** Another process wrote the cycle this one was about to write: it must stop. */
export class EngineFencedError extends QcatError {
  constructor(portfolioId: string, cycle: number) {
    super(
      'ENGINE_FENCED',
      `another engine wrote cycle ${cycle} of ${portfolioId}; this one stops (is a second leader running?)`,
    );
  }
}

export class PaperEngine {
  private stepper: Stepper | undefined;
  private state: EngineState | undefined;
  private config: PortfolioConfig | undefined;
  /** Last cycle applied; -1 before the first. */
  private cycle = -1;
  private cursor = 0;
  private inboxRevision = -1;
  private savedCycle = -1;
  private recovered = false;
  private risk: EngineRiskState = initialRiskState();
  /** Position of the engine's last own risk event: the read model must be past it. */
  private riskPosition = -1n;
  /** A newer risk snapshot from the read model, recorded with the next cycle. */
  private pendingRisk: RiskSnapshot | null = null;
  /** Event id of the last cycle's record: a snapshot names it, to prove it belongs to this log. */
  private recordId = '';
  private readonly barMs: number;

  constructor(private readonly options: EngineOptions) {
    this.barMs = TIMEFRAME_MS[options.timeframe];
  }

  get portfolioId(): string {
    return this.options.portfolioId;
  }

  /** The last cycle applied (-1 before the first) and the state after it. */
  status(): { cycle: number; cursor: number; state: EngineState | undefined } {
    return { cycle: this.cycle, cursor: this.cursor, state: this.state };
  }

  /** Back to a new engine's state, before a recovery. */
  private reset(): void {
    this.stepper = undefined;
    this.state = undefined;
    this.config = undefined;
    this.cycle = -1;
    this.cursor = 0;
    this.inboxRevision = -1;
    this.savedCycle = -1;
    this.risk = initialRiskState();
    this.riskPosition = -1n;
    this.pendingRisk = null;
    this.recordId = '';
  }

  /** Loads the snapshot and replays the cycles written after it (completing a cut-short one). */
  async recover(): Promise<number> {
    this.reset();
    let snapshot = await this.options.snapshots.load(this.portfolioId);
    if (snapshot) {
      // A snapshot of another log (a restore into the same database): replay from the start.
      const [record] = await this.options.store.readStream(engineStream(this.portfolioId), {
        fromRevision: BigInt(snapshot.cycle),
        maxCount: 1,
      });
      if (record?.eventId !== snapshot.recordId) snapshot = undefined;
    }
    if (snapshot) {
      this.config = asRecorded(snapshot.config);
      this.stepper = this.makeStepper(this.config);
      this.state = snapshot.state;
      this.cycle = snapshot.cycle;
      this.cursor = snapshot.cursor;
      this.inboxRevision = snapshot.inboxRevision;
      this.savedCycle = snapshot.cycle;
      this.risk = snapshot.risk ?? initialRiskState();
      this.riskPosition = BigInt(snapshot.riskPosition ?? '-1');
      this.recordId = snapshot.recordId;
    }
    // In pages: after a restore the whole log of the portfolio may be replayed.
    let replayed = 0;
    const page = this.options.recoveryPage ?? 1_000;
    for (;;) {
      const records = await this.options.store.readStream(engineStream(this.portfolioId), {
        fromRevision: BigInt(this.cycle + 1),
        maxCount: page,
      });
      for (const event of records) await this.apply(engineCycleOpened.parse(event), event);
      replayed += records.length;
      if (records.length < page) break;
      await this.save();
    }
    this.recovered = true;
    if (replayed > 0) await this.save();
    return replayed;
  }

  /**
   * One round: takes the configuration the strategies ask for, then every stored bar after the
   * cursor (and the waiting desk events) cycle by cycle. Answers the number of cycles written.
   */
  async tick(): Promise<number> {
    if (!this.recovered) await this.recover();
    let written = 0;
    if (this.options.risk) {
      const fetched = await this.options.risk.snapshot();
      // Adopted only once the read model has our own risk events; re-decided every round.
      this.pendingRisk =
        fetched.position >= this.riskPosition && !sameJson(fetched.snapshot, this.risk.snapshot)
          ? fetched.snapshot
          : null;
    }
    let config = await this.plan();
    if (config === undefined) return 0;
    // A configuration the Stepper refuses must never reach the write-ahead log.
    if (!sameJson(config, this.config)) new Stepper(config);
    const symbols = [...new Set(config.books.map((book) => book.symbol))];

    if (this.cycle < 0) {
      // A new portfolio starts after the newest bar; without bars there is nothing to start on.
      const start =
        this.options.startAfter ??
        (await this.options.candles.latestOpenTime(this.options.timeframe, symbols));
      if (start === undefined) return 0;
      await this.run({ barTime: start, candles: [], config });
      config = this.config;
      written++;
    }

    const limit = Math.max(this.options.batchSize ?? 500, symbols.length * 2);
    const candles = await this.options.candles.candlesAfter(
      this.options.timeframe,
      symbols,
      this.cursor,
      limit,
    );
    // A full page may end inside a bar time: leave that one for the next round, whole.
    if (candles.length === limit) {
      const last = (candles.at(-1) as Candle).openTime;
      while (candles.length > 0 && (candles.at(-1) as Candle).openTime === last) candles.pop();
    }
    let index = 0;
    while (index < candles.length) {
      const barTime = (candles[index] as Candle).openTime;
      const group: Candle[] = [];
      while (index < candles.length && (candles[index] as Candle).openTime === barTime)
        group.push(candles[index++] as Candle);
      await this.run({
        barTime,
        candles: group,
        config: sameJson(config, this.config) ? null : (config ?? null),
      });
      written++;
    }
    if (candles.length === 0 && (await this.hasInbox())) {
      await this.run({
        barTime: this.cursor,
        candles: [],
        config: sameJson(config, this.config) ? null : (config ?? null),
      });
      written++;
    }
    if (written > 0) await this.save();
    return written;
  }

  /** Writes and applies one cycle. */
  private async run(input: {
    barTime: number;
    candles: Candle[];
    config: PortfolioConfig | null | undefined;
  }): Promise<void> {
    const cycle = this.cycle + 1;
    const inbox = await this.readInbox(this.inboxRevision + 1);
    const record: CycleRecord = {
      portfolioId: this.portfolioId,
      cycle,
      barTime: input.barTime,
      candles: input.candles,
      inbox:
        inbox.length > 0
          ? { from: this.inboxRevision + 1, to: Number((inbox.at(-1) as RecordedEvent).revision) }
          : null,
      config: input.config ?? null,
      risk: this.pendingRisk,
    };
    this.pendingRisk = null;
    // A fresh id, so that a second engine writing the same cycle conflicts instead of repeating.
    const eventId = crypto.randomUUID();
    try {
      await this.options.store.appendToStream(
        engineStream(this.portfolioId),
        [
          {
            eventId,
            type: 'EngineCycleOpened',
            data: record,
            metadata: { actor: ENGINE_ACTOR },
          },
        ],
        { expectedRevision: cycle === 0 ? 'no_stream' : BigInt(cycle - 1) },
      );
    } catch (error) {
      if (error instanceof ConcurrencyConflictError)
        throw new EngineFencedError(this.portfolioId, cycle);
      throw error;
    }
    await this.apply(record, { eventId, correlationId: eventId }, inbox);
    if (this.cycle - this.savedCycle >= (this.options.snapshotEvery ?? 100)) await this.save();
  }

  /**
   * Applies a recorded cycle to the state and appends its events (idempotently). `inbox` is
   * passed when the caller has just read it; on replay it is read again from the log.
   */
  private async apply(record: CycleRecord, origin: Origin, inbox?: RecordedEvent[]): Promise<void> {
    const sizingHeldBefore = this.config?.automation?.sizingHeld ?? null;
    if (record.config) this.reconfigure(asRecorded(record.config));
    if (record.risk) this.risk.snapshot = record.risk;
    const stepper = this.stepper;
    const state = this.state;
    if (!stepper || !state)
      throw new QcatError('ENGINE_NOT_CONFIGURED', 'cycle without configuration');
    const taken =
      record.inbox === null
        ? []
        : (inbox ?? (await this.readInbox(record.inbox.from, record.inbox.to)));
    const { outputs, after } = this.outputsOf(
      record,
      origin,
      { stepper, state, taken },
      sizingHeldBefore,
    );
    numberOutputs(outputs, this.portfolioId, record.cycle);
    await this.append(outputs);
    this.state = after;
    this.cycle = record.cycle;
    this.recordId = origin.eventId;
    if (record.candles.length > 0) this.cursor = record.barTime;
    else if (record.cycle === 0) this.cursor = record.barTime;
    if (record.inbox) this.inboxRevision = record.inbox.to;
  }

  /**
   * The events of a cycle, in the order they are numbered: the desk's first (orders placed
   * between bars take part in the coming bar), a sizing hold, the bars', the risk layer's, the
   * valuation. Answers the state after the bars.
   */
  private outputsOf(
    record: CycleRecord,
    origin: Origin,
    input: { stepper: Stepper; state: EngineState; taken: readonly RecordedEvent[] },
    sizingHeldBefore: string | null,
  ): { outputs: Output[]; after: EngineState } {
    const { stepper, taken } = input;
    let state = input.state;
    const outputs: Output[] = [];
    const emit = (events: readonly TradingEvent[], metadata: EventMetadata): void => {
      for (const event of events)
        outputs.push({
          streamId: streamOf(this.portfolioId, event),
          event: { type: event.type, data: event.data, metadata },
        });
    };
    const time =
      record.barTime > 0 && record.candles.length === 0
        ? record.barTime + this.barMs
        : record.barTime;
    for (const recorded of taken) {
      const desk = deskDecider.parseEvent(domainEventOf(recorded));
      const metadata: EventMetadata = {
        actor: recorded.metadata.actor,
        causationId: recorded.eventId,
        correlationId: recorded.metadata.correlationId ?? recorded.eventId,
      };
      emit(takeDesk(this.portfolioId, stepper, state, desk, time), metadata);
    }
    const system: EventMetadata = {
      actor: ENGINE_ACTOR,
      causationId: origin.eventId,
      correlationId: origin.correlationId ?? origin.eventId,
    };
    const held = (capability: Capability, streamId: string, command: string, why: string): void => {
      outputs.push(
        heldOutput({ capability, streamId, command, reason: why }, origin.eventId, system),
      );
    };
    const sizingHeld = this.config?.automation?.sizingHeld ?? null;
    if (sizingHeld && sizingHeld !== sizingHeldBefore)
      held('balance_sizing', engineStream(this.portfolioId), 'SizeByBalance', sizingHeld);
    for (const candle of record.candles) {
      const result = stepper.step(state, candle);
      state = result.state;
      if (result.events.length > 0) emit(result.events, system);
    }
    if (this.options.risk && record.candles.length > 0)
      this.afterBars(stepper, state, record.candles, {
        held,
        trading: (events) => {
          emit(events, system);
        },
        riskEvents: (streamId, events) => {
          for (const event of events)
            outputs.push({
              streamId,
              event: { type: event.type, data: event.data, metadata: system },
            });
        },
      });
    if (record.candles.length > 0 || outputs.length > 0)
      outputs.push({
        streamId: valuationStream(this.portfolioId),
        event: {
          type: 'PortfolioValued',
          data: valuationOf(this.portfolioId, this.barMs, stepper, state, record),
          metadata: system,
        },
      });
    return { outputs, after: state };
  }

  /** The risk layer after the cycle's bars (risk-control.ts), its events handed to `sink`. */
  private afterBars(
    stepper: Stepper,
    state: EngineState,
    candles: readonly Candle[],
    sink: Pick<RiskStep, 'held' | 'trading' | 'riskEvents'>,
  ): void {
    const config = this.config;
    afterBars({
      portfolioId: this.portfolioId,
      stepper,
      state,
      risk: this.risk,
      candles,
      barMs: this.barMs,
      automation: config?.automation ?? ALL_ON,
      ...sink,
      capitalOf: (strategyId) => {
        const book = config?.books.find((b) => b.strategyId === strategyId);
        return book?.capital ?? (book?.allocation ?? 0) * (config?.initialCash ?? 0);
      },
    });
  }

  /** Appends each stream's events of the cycle in one append (all or nothing per stream). */
  private async append(outputs: readonly Output[]): Promise<void> {
    await Promise.all(
      [...byStream(outputs)].map(async ([streamId, events]) => {
        const result = await this.options.store.appendToStream(streamId, events, {
          expectedRevision: 'any',
        });
        if (streamId.startsWith('risk-') && result.position > this.riskPosition)
          this.riskPosition = result.position;
      }),
    );
  }

  /** The configuration the strategies ask for now; undefined while there is nothing to trade. */
  private plan(): Promise<PortfolioConfig | undefined> {
    return planConfig(this.options, this.config, this.state);
  }

  /** A new Stepper for `config`, carrying the account, venue and unchanged books' signals over. */
  private reconfigure(config: PortfolioConfig): void {
    const stepper = this.makeStepper(config);
    const next = stepper.initialState();
    const previous = this.state;
    const old = this.config;
    if (previous && old) carryOver(next, config, previous, old);
    this.stepper = stepper;
    this.state = next;
    this.config = config;
  }

  private makeStepper(config: PortfolioConfig): Stepper {
    if (!this.options.risk) return new Stepper(config);
    const snapshot = () => this.risk.snapshot;
    return new Stepper({
      ...config,
      risk: createRiskCheck(snapshot),
      ...(config.sizing ? { headroom: headroomFrom(snapshot, this.portfolioId) } : {}),
    });
  }

  private async readInbox(fromRevision: number, toRevision?: number): Promise<RecordedEvent[]> {
    return this.options.store.readStream(deskStream(this.portfolioId), {
      fromRevision: BigInt(fromRevision),
      ...(toRevision === undefined ? {} : { toRevision: BigInt(toRevision) }),
    });
  }

  private async hasInbox(): Promise<boolean> {
    return (await this.readInbox(this.inboxRevision + 1)).length > 0;
  }

  private async save(): Promise<void> {
    if (!this.config || !this.state || this.cycle < 0) return;
    await this.options.snapshots.save({
      portfolioId: this.portfolioId,
      cycle: this.cycle,
      config: this.config,
      state: this.state,
      cursor: this.cursor,
      inboxRevision: this.inboxRevision,
      recordId: this.recordId,
      ...(this.options.risk ? { risk: this.risk, riskPosition: this.riskPosition.toString() } : {}),
    });
    this.savedCycle = this.cycle;
  }
}
