// Over 400 lines: one write-ahead-logged cycle (ADR 008) with recovery and recorded inputs; its
// ports are in engine-ports.ts, its record in cycle-record.ts (ADR 028); splitting recovery and
// configuration recording out is issue #16's next step (ADR 025).
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
import { v5 as uuidv5 } from 'uuid';
import { ConcurrencyConflictError, QcatError } from '../errors.js';
import type {
  EventMetadata,
  JsonObject,
  NewEvent,
  RecordedEvent,
} from '../eventstore/event-store.js';
import type { Candle } from '../market/types.js';
import { TIMEFRAME_MS } from '../market/types.js';
import { orderStream, reason, submitted, type OrderRequest } from '../trading/orders.js';
import { accountStream, positionStream, unrealizedPnl } from '../trading/accounting.js';
import {
  Stepper,
  type BookConfig,
  type EngineState,
  type TradingEvent,
} from '../trading/stepper.js';
import { DEFAULT_VENUE_COSTS } from '../trading/venue.js';
import { createRiskCheck, type RiskSnapshot } from '../risk/checks.js';
import type { Capability } from '../capabilities/capabilities.js';
import { decisionStream } from '../capabilities/decisions.js';
import {
  ALL_ON,
  ENGINE_MANAGERS,
  automationActorOf,
  capabilityOff,
} from '../capabilities/engine.js';
import { deskStream, desk as deskDecider, type DeskEvent } from './desk.js';
import { bookAllocation, headroomFrom } from './allocation.js';
import { afterBars, initialRiskState, type EngineRiskState } from './risk-control.js';
import type { PortfolioConfig, EngineOptions } from './engine-ports.js';

export * from './engine-ports.js';

export const engineStream = (portfolioId: string): string => `engine-${portfolioId}`;
/** Valuations of a portfolio: category `position`, so they are on the `positions` feed. */
export const valuationStream = (portfolioId: string): string => `position-${portfolioId}`;

export const ENGINE_ACTOR = 'system:paper-engine';
const NAMESPACE = '0b6f6a44-65c2-4a3e-9f1b-6d7f2f3c8a51';

/**
 * What a recorded configuration without them meant: the venue's costs were the code's defaults of
 * then (not recorded), and the books' orders were named per strategy. Fixed here, so that a later
 * change of the defaults never changes the replay of an old record.
 */
const BEFORE_RECORDED: Required<Pick<PortfolioConfig, 'venue' | 'clientOrderIds'>> = {
  venue: { slippageBps: 5, makerFeeBps: 2, takerFeeBps: 5, maxVolumeShare: 0.1 },
  clientOrderIds: 'strategy',
};

/** A configuration as recorded (write-ahead log, snapshot), with what older records left out. */
const asRecorded = (config: PortfolioConfig): PortfolioConfig => ({
  ...config,
  venue: config.venue ?? BEFORE_RECORDED.venue,
  clientOrderIds: config.clientOrderIds ?? BEFORE_RECORDED.clientOrderIds,
});

export type { CycleRecord } from './cycle-record.js';

/** Another process wrote the cycle this one was about to write: it must stop. */
export class EngineFencedError extends QcatError {
  constructor(portfolioId: string, cycle: number) {
    super(
      'ENGINE_FENCED',
      `another engine wrote cycle ${cycle} of ${portfolioId}; this one stops (is a second leader running?)`,
    );
  }
}

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
const keyOf = (strategyId: string, symbol: string): string => `${strategyId}|${symbol}`;

/** A cycle's output: an event with the metadata it is appended with. */
type Output = { streamId: string; event: NewEvent };

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
  private async apply(
    record: CycleRecord,
    origin: { eventId: string; correlationId?: string | undefined },
    inbox?: RecordedEvent[],
  ): Promise<void> {
    const sizingHeldBefore = this.config?.automation?.sizingHeld ?? null;
    if (record.config) this.reconfigure(asRecorded(record.config));
    if (record.risk) this.risk.snapshot = record.risk;
    const stepper = this.stepper;
    let state = this.state;
    if (!stepper || !state)
      throw new QcatError('ENGINE_NOT_CONFIGURED', 'cycle without configuration');
    const taken =
      record.inbox === null
        ? []
        : (inbox ?? (await this.readInbox(record.inbox.from, record.inbox.to)));
    const outputs: Output[] = [];
    const emit = (events: readonly TradingEvent[], metadata: EventMetadata): void => {
      for (const event of events)
        outputs.push({
          streamId: this.streamOf(event),
          event: { type: event.type, data: event.data, metadata },
        });
    };
    const time =
      record.barTime > 0 && record.candles.length === 0
        ? record.barTime + this.barMs
        : record.barTime;

    // Desk first: orders placed between bars take part in the coming bar.
    for (const recorded of taken) {
      const desk = deskDecider.parseEvent(domainEventOf(recorded));
      const metadata: EventMetadata = {
        actor: recorded.metadata.actor,
        causationId: recorded.eventId,
        correlationId: recorded.metadata.correlationId ?? recorded.eventId,
      };
      emit(this.takeDesk(stepper, state, desk, time), metadata);
    }
    const system: EventMetadata = {
      actor: ENGINE_ACTOR,
      causationId: origin.eventId,
      correlationId: origin.correlationId ?? origin.eventId,
    };
    /** What a capability the policy switched off would have done, recorded as its hold. */
    const held = (capability: Capability, streamId: string, command: string, why: string): void => {
      const manager = ENGINE_MANAGERS[capability] ?? capability;
      outputs.push({
        streamId: decisionStream(manager),
        event: {
          type: 'AutomationActionHeld',
          data: { manager, cause: origin.eventId, streamId, command, reason: why },
          metadata: { ...system, actor: automationActorOf(manager) },
        },
      });
    };
    const sizingHeld = this.config?.automation?.sizingHeld ?? null;
    if (sizingHeld && sizingHeld !== sizingHeldBefore)
      held('balance_sizing', engineStream(this.portfolioId), 'SizeByBalance', sizingHeld);
    for (const candle of record.candles) {
      const result = stepper.step(state, candle);
      state = result.state;
      if (result.events.length > 0) emit(result.events, system);
    }
    if (this.options.risk && record.candles.length > 0) {
      const config = this.config;
      afterBars({
        portfolioId: this.portfolioId,
        stepper,
        state,
        risk: this.risk,
        candles: record.candles,
        barMs: this.barMs,
        automation: config?.automation ?? ALL_ON,
        held,
        capitalOf: (strategyId) => {
          const book = config?.books.find((b) => b.strategyId === strategyId);
          return book?.capital ?? (book?.allocation ?? 0) * (config?.initialCash ?? 0);
        },
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
    }
    if (record.candles.length > 0 || outputs.length > 0)
      outputs.push({
        streamId: valuationStream(this.portfolioId),
        event: {
          type: 'PortfolioValued',
          data: this.valuation(stepper, state, record),
          metadata: system,
        },
      });

    outputs.forEach((output, index) => {
      output.event.eventId = uuidv5(`${this.portfolioId}:${record.cycle}:${index}`, NAMESPACE);
    });
    await this.append(outputs);
    this.state = state;
    this.cycle = record.cycle;
    this.recordId = origin.eventId;
    if (record.candles.length > 0) this.cursor = record.barTime;
    else if (record.cycle === 0) this.cursor = record.barTime;
    if (record.inbox) this.inboxRevision = record.inbox.to;
  }

  private takeDesk(
    stepper: Stepper,
    state: EngineState,
    desk: DeskEvent,
    time: number,
  ): readonly TradingEvent[] {
    if (desk.type === 'ManualCancelRequested')
      return stepper.cancel(state, desk.data.clientOrderId, desk.data.reason, time).events;
    const order: OrderRequest = { ...desk.data.order, portfolioId: this.portfolioId };
    const known = state.books.some(
      (book) => book.strategyId === order.strategyId && book.symbol === order.symbol,
    );
    if (known) return stepper.submit(state, order, time).events;
    return [
      { type: 'OrderSubmitted', data: submitted(order, time) },
      {
        type: 'OrderRejected',
        data: {
          clientOrderId: order.clientOrderId,
          reason: reason('UNKNOWN_BOOK', {
            portfolioId: this.portfolioId,
            strategyId: order.strategyId,
            symbol: order.symbol,
          }),
          time,
        },
      },
    ];
  }

  /** Appends each stream's events of the cycle in one append (all or nothing per stream). */
  private async append(outputs: readonly Output[]): Promise<void> {
    const byStream = new Map<string, NewEvent[]>();
    for (const { streamId, event } of outputs) {
      const events = byStream.get(streamId);
      if (events) events.push(event);
      else byStream.set(streamId, [event]);
    }
    await Promise.all(
      [...byStream].map(async ([streamId, events]) => {
        const result = await this.options.store.appendToStream(streamId, events, {
          expectedRevision: 'any',
        });
        if (streamId.startsWith('risk-') && result.position > this.riskPosition)
          this.riskPosition = result.position;
      }),
    );
  }

  private streamOf(event: TradingEvent): string {
    switch (event.type) {
      case 'PositionChanged':
      case 'PositionClosed':
        return positionStream(this.portfolioId, event.data.strategyId, event.data.symbol);
      case 'CashBalanceChanged':
        return accountStream(this.portfolioId);
      default:
        return orderStream(event.data.clientOrderId);
    }
  }

  private valuation(stepper: Stepper, state: EngineState, record: CycleRecord): JsonObject {
    let realized = 0;
    let unrealized = 0;
    const positions = state.account.positions.map((position) => {
      const mark = state.marks[position.symbol] ?? position.averageEntryPrice;
      const open = unrealizedPnl(position, mark);
      realized += position.realizedPnl;
      unrealized += open;
      return {
        strategyId: position.strategyId,
        symbol: position.symbol,
        quantity: position.quantity,
        averageEntryPrice: position.averageEntryPrice,
        markPrice: mark,
        unrealizedPnl: open,
        realizedPnl: position.realizedPnl,
        feesPaid: position.feesPaid,
      };
    });
    return {
      portfolioId: this.portfolioId,
      currency: state.account.currency,
      // The close of the last bar taken (a desk-only cycle revalues at the same instant).
      time: record.barTime + this.barMs,
      cycle: record.cycle,
      cash: state.account.cash,
      equity: stepper.equity(state),
      feesPaid: state.account.feesPaid,
      realizedPnl: realized,
      unrealizedPnl: unrealized,
      positions,
    };
  }

  /** The configuration the strategies ask for now; undefined while there is nothing to trade. */
  private async plan(): Promise<PortfolioConfig | undefined> {
    const { timeframe, initialCash } = this.options;
    const strategies = await this.options.strategies.strategies(timeframe);
    const applied = await this.options.allocations?.current(this.portfolioId);
    const switches = await this.options.automation?.switches();
    const sizingAsked = applied?.sizing.enabled === true;
    const sizingOff = sizingAsked && switches?.balanceSizing === false;
    const allocation = sizingAsked && !sizingOff ? applied : undefined;
    const current = this.config;
    const state = this.state;
    const held = new Set<string>();
    if (current && state) {
      current.books.forEach((book, index) => {
        const position = state.account.positions[index];
        const open = state.venue.open.some(
          (order) =>
            order.request.strategyId === book.strategyId && order.request.symbol === book.symbol,
        );
        if ((position && position.quantity !== 0) || open)
          held.add(keyOf(book.strategyId, book.symbol));
      });
    }
    const wanted = new Map<string, BookConfig>();
    for (const strategy of strategies) {
      const enabled = strategy.status === 'paper' || strategy.status === 'live';
      for (const symbol of strategy.symbols) {
        const key = keyOf(strategy.strategyId, symbol);
        if (!enabled && strategy.status !== 'paused' && !held.has(key)) continue;
        wanted.set(key, {
          strategyId: strategy.strategyId,
          symbol,
          kind: strategy.kind,
          parameters: strategy.parameters,
          ...(allocation
            ? {
                allocation: bookAllocation(
                  allocation,
                  strategy.strategyId,
                  strategy.symbols.length,
                ),
                capital: strategy.capital,
              }
            : { allocation: Math.min(1, Math.max(strategy.capital / initialCash, 1e-6)) }),
          enabled,
        });
      }
    }
    // Books that disappeared from the read model but still hold something stay, disabled.
    for (const book of current?.books ?? []) {
      const key = keyOf(book.strategyId, book.symbol);
      if (!wanted.has(key) && held.has(key))
        wanted.set(key, {
          ...book,
          enabled: false,
          // Back from an allocation (weight 0) to capital-based sizing: a book needs a share.
          ...(allocation || book.allocation > 0 ? {} : { allocation: 1e-6 }),
        });
    }
    if (wanted.size === 0 && !current) return undefined;
    const symbols = [...new Set([...wanted.values()].map((book) => book.symbol))].sort();
    // Only instruments quoted in the portfolio's currency can be booked in its account.
    const instruments = (await this.options.candles.instruments(symbols)).filter(
      (instrument) => instrument.quote === this.options.currency,
    );
    const tradable = new Set(instruments.map((instrument) => instrument.symbol));
    // Existing books keep their order; new ones follow, sorted.
    const books: BookConfig[] = [];
    for (const book of current?.books ?? []) {
      const next = wanted.get(keyOf(book.strategyId, book.symbol));
      if (next) books.push(next);
      wanted.delete(keyOf(book.strategyId, book.symbol));
    }
    books.push(
      ...[...wanted.values()]
        .filter((book) => tradable.has(book.symbol))
        .sort((a, b) => keyOf(a.strategyId, a.symbol).localeCompare(keyOf(b.strategyId, b.symbol))),
    );
    const config: PortfolioConfig = {
      portfolioId: this.portfolioId,
      currency: this.options.currency,
      initialCash: current?.initialCash ?? initialCash,
      timeframe,
      instruments: instruments.filter((instrument) =>
        books.some((book) => book.symbol === instrument.symbol),
      ),
      books,
      ...(allocation ? { sizing: { band: allocation.sizing.band } } : {}),
      venue: { ...(this.options.costs ?? DEFAULT_VENUE_COSTS) },
      clientOrderIds: 'book',
      ...(switches
        ? {
            automation: {
              autoExits: switches.autoExits,
              dynamicExits: switches.dynamicExits,
              sizingHeld: sizingOff ? capabilityOff('balance_sizing') : null,
            },
          }
        : {}),
    };
    return sameJson(config, current) ? current : config;
  }

  /** A new Stepper for `config`, carrying the account, venue and unchanged books' signals over. */
  private reconfigure(config: PortfolioConfig): void {
    const stepper = this.makeStepper(config);
    const next = stepper.initialState();
    const previous = this.state;
    const old = this.config;
    if (previous && old) {
      next.bars = previous.bars;
      next.account.cash = previous.account.cash;
      next.account.feesPaid = previous.account.feesPaid;
      next.venue = previous.venue;
      next.marks = previous.marks;
      next.lastOpenTime = previous.lastOpenTime;
      const before = new Map(
        old.books.map((book, index) => [keyOf(book.strategyId, book.symbol), index]),
      );
      config.books.forEach((book, index) => {
        const was = before.get(keyOf(book.strategyId, book.symbol));
        if (was === undefined) return;
        const position = previous.account.positions[was];
        const bookState = previous.books[was];
        const oldBook = old.books[was];
        if (position) next.account.positions[index] = position;
        const fresh = next.books[index];
        if (!bookState || !fresh || !oldBook) return;
        const sameSignal =
          oldBook.kind === book.kind && sameJson(oldBook.parameters, book.parameters);
        next.books[index] = sameSignal
          ? bookState
          : {
              ...fresh,
              target: bookState.target,
              orderBar: bookState.orderBar,
              ordersOnBar: bookState.ordersOnBar,
            };
      });
    }
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
