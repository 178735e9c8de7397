import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { NewEvent, RecordedEvent } from '../core/eventstore/event-store.js';
import { InMemoryEventStore } from '../core/eventstore/in-memory-event-store.js';
import { ConfigurationError, loadConfig } from '../ops/config.js';
import { backupDir } from './backup-service.js';
import { loadCatalog } from './catalog.js';
import { nextRun } from './cron.js';
import { eventToLine, lineToEvent, parseRestorePoint, type Manifest } from './format.js';
import { appendThroughPort, planRestore, plannedEvents } from './restore.js';
import { applyRetention } from './retention.js';
import { scanSegment } from './segments.js';
import { takeBackup } from './take-backup.js';
import { verifyBackups } from './verify.js';

const folders: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'qcat-backup-unit-'));
  folders.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const storeInfo = { adapter: 'memory', location: 'unit test' };

/** A log whose clock moves 1 s per append, from a fixed start. */
function clockedStore(start = Date.parse('2026-03-01T00:00:00.000Z')): {
  store: InMemoryEventStore;
  at: (n: number) => Date;
} {
  let tick = 0;
  const at = (n: number): Date => new Date(start + n * 1000);
  return { store: new InMemoryEventStore(() => at(tick++)), at };
}

const events = (count: number, label: string): NewEvent[] =>
  Array.from({ length: count }, (_, i) => ({
    type: 'Probe',
    data: { label, i, text: 'tab\tnewline\nbackslash\\quote"é' },
    metadata: { actor: `actor-${i % 3}`, correlationId: randomUUID() },
  }));

async function readAllEvents(store: InMemoryEventStore): Promise<RecordedEvent[]> {
  const all: RecordedEvent[] = [];
  for (;;) {
    const batch = await store.readAll({ after: all.at(-1)?.position ?? 0n, maxCount: 100 });
    if (batch.length === 0) return all;
    all.push(...batch);
  }
}

async function collect(source: AsyncIterable<RecordedEvent[]>): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for await (const batch of source) out.push(...batch);
  return out;
}

describe('backup format', () => {
  it('an event line carries every field of the recorded event, including ones it does not know', () => {
    const event = {
      eventId: randomUUID(),
      type: 'OrderPlaced',
      data: { price: 64000.25, legs: [1, 'two', null], nested: { a: true } },
      metadata: { actor: 'trader-1', correlationId: 'c-1' },
      streamId: 'order-1',
      revision: 3n,
      position: 12345678901234n,
      recordedAt: new Date('2026-11-26T02:00:00.123Z'),
      hash: 'ab'.repeat(32),
      futureField: { added: 'later' },
    } as RecordedEvent;
    const line = eventToLine(event);
    expect(line).not.toContain('\n');
    expect(lineToEvent(line)).toEqual(event);
  });

  it.each([
    ['{"broken', 'not JSON'],
    ['[1,2]', 'not a JSON object'],
    ['{"revision":"0","recordedAt":"2026-11-26T02:00:00.000Z"}', 'position is missing'],
    [
      '{"position":"-1","revision":"0","recordedAt":"2026-11-26T02:00:00.000Z"}',
      'position is not a non-negative integer string',
    ],
    [
      '{"position":"1","revision":"0","recordedAt":"yesterday","data":1}',
      'recordedAt is not an ISO instant',
    ],
    [
      '{"position":"1","revision":"0","recordedAt":"2026-11-26T02:00:00.000Z","data":1,"eventId":"x"}',
      'eventId is not a uuid',
    ],
  ])('refuses the line %s: %s', (line, reason) => {
    expect(() => lineToEvent(line)).toThrow(reason);
  });

  it('reads --to as a position or an ISO instant with a zone, nothing else', () => {
    expect(parseRestorePoint('42')).toEqual({ position: 42n });
    expect(parseRestorePoint('2026-11-26T10:00:00Z')).toEqual({
      instant: new Date('2026-11-26T10:00:00.000Z'),
    });
    expect(parseRestorePoint('2026-11-26T12:00:00.250+02:00')).toEqual({
      instant: new Date('2026-11-26T10:00:00.250Z'),
    });
    for (const bad of ['yesterday', '2026-11-26', '2026-11-26T10:00:00', '-3', '1.5'])
      expect(() => parseRestorePoint(bad), bad).toThrow('neither a position');
    // ADR 011: instants outside the domain range are refused by name, not sent to SQL.
    expect(() => parseRestorePoint('0000-01-01T00:00:00Z')).toThrow('outside the accepted range');
  });
});

describe('backups through the port', () => {
  it('a full and two incremental backups hold every event once, in bounded segments, and verify', async () => {
    const { store } = clockedStore();
    const dir = tempDir();
    await store.appendToStream('order-1', events(4, 'a'));
    await store.appendToStream('fill-1', events(3, 'a'));
    const full = await takeBackup({ store, dir, kind: 'full', storeInfo, segmentEvents: 3 });
    await store.appendToStream('order-1', events(2, 'b'));
    const first = await takeBackup({
      store,
      dir,
      kind: 'incremental',
      storeInfo,
      segmentEvents: 3,
    });
    await store.appendToStream('risk-1', events(5, 'c'));
    const second = await takeBackup({
      store,
      dir,
      kind: 'incremental',
      storeInfo,
      segmentEvents: 3,
    });

    expect(full.segments.map((segment) => segment.count)).toEqual([3, 3, 1]);
    expect([full.eventCount, first.eventCount, second.eventCount]).toEqual([7, 2, 5]);
    expect(first.previousBackupId).toBe(full.backupId);
    expect(second.previousBackupId).toBe(first.backupId);
    expect([first.positions.after, second.positions.after]).toEqual(['7', '9']);
    expect(second.eventFields).toContain('hash');
    expect(readdirSync(dir).sort()).toEqual(
      [full.backupId, first.backupId, second.backupId].sort(),
    );

    const report = await verifyBackups(dir);
    expect(report.problems).toEqual([]);
    expect(report.backups.map((check) => check.problems)).toEqual([[], [], []]);
    expect(report.ok).toBe(true);

    const plan = await planRestore(dir, { position: 14n });
    expect(await collect(plannedEvents(plan, true))).toEqual(await readAllEvents(store));
  });

  it('an incremental with nothing new writes nothing; the next one follows the last backup', async () => {
    const { store } = clockedStore();
    const dir = tempDir();
    await store.appendToStream('order-1', events(2, 'a'));
    const full = await takeBackup({ store, dir, kind: 'full', storeInfo });
    await expect(takeBackup({ store, dir, kind: 'incremental', storeInfo })).rejects.toThrow(
      `nothing new since backup ${full.backupId}`,
    );
    expect(readdirSync(dir)).toEqual([full.backupId]);
    await store.appendToStream('order-1', events(1, 'b'));
    const next = await takeBackup({ store, dir, kind: 'incremental', storeInfo });
    expect(next.previousBackupId).toBe(full.backupId);
    expect((await verifyBackups(dir)).ok).toBe(true);
  });

  it('an incremental needs a backup to build on, and a log that continues it', async () => {
    const { store } = clockedStore();
    const dir = tempDir();
    await store.appendToStream('order-1', events(2, 'a'));
    await expect(takeBackup({ store, dir, kind: 'incremental', storeInfo })).rejects.toThrow(
      /no backup to build an incremental on .*qcat backup full/,
    );
    await takeBackup({ store, dir, kind: 'full', storeInfo });
    // Another log, with other events at the same positions.
    const { store: other } = clockedStore();
    await other.appendToStream('order-1', events(3, 'x'));
    await expect(takeBackup({ store: other, dir, kind: 'incremental', storeInfo })).rejects.toThrow(
      /the log does not continue backup .*-full-.*: its event order-1@1 is/,
    );
    // Nothing half-written is left behind.
    expect(readdirSync(dir).filter((name) => name.startsWith('.partial-'))).toEqual([]);
  });

  it('plans a restore to an instant with the segments up to it, and says when the backups end first', async () => {
    const { store, at } = clockedStore();
    const dir = tempDir();
    for (let i = 0; i < 6; i++) await store.appendToStream(`order-${i}`, events(2, 'a'));
    await takeBackup({ store, dir, kind: 'full', storeInfo, segmentEvents: 4 });
    for (let i = 0; i < 4; i++) await store.appendToStream(`fill-${i}`, events(1, 'b'));
    await takeBackup({ store, dir, kind: 'incremental', storeInfo, segmentEvents: 4 });

    // Append n was recorded at at(n): appends 0-5 hold positions 1-12, appends 6-9 positions 13-16.
    const plan = await planRestore(dir, { instant: at(2) });
    expect(plan.reads).toHaveLength(1);
    expect(plan.reads[0]?.segments.map((segment) => segment.file)).toEqual([
      'segment-000001.ndjson.gz',
      'segment-000002.ndjson.gz',
    ]);
    expect(plan.beyondBackups).toBe(false);
    const restored = await collect(plannedEvents(plan, true));
    expect(restored.map((event) => event.position)).toEqual([1n, 2n, 3n, 4n, 5n, 6n]);

    const between = await planRestore(dir, { instant: at(7) });
    expect((await collect(plannedEvents(between, true))).at(-1)?.position).toBe(14n);

    const later = await planRestore(dir, { instant: at(100) });
    expect(later.beyondBackups).toBe(true);
    expect((await collect(plannedEvents(later, true))).length).toBe(16);
    expect((await planRestore(dir, { position: 99n })).beyondBackups).toBe(true);
  });

  it('restores through the port with event ids, streams, revisions and content, in order', async () => {
    const { store } = clockedStore();
    const dir = tempDir();
    await store.appendToStream('order-1', events(3, 'a'));
    await store.appendToStream('fill-1', events(2, 'a'));
    await store.appendToStream('order-1', events(2, 'b'));
    await takeBackup({ store, dir, kind: 'full', storeInfo });
    const target = new InMemoryEventStore();
    const result = await appendThroughPort(
      target,
      plannedEvents(await planRestore(dir, { position: 7n }), true),
    );
    expect(result.count).toBe(7);
    const strip = (event: RecordedEvent) => ({
      eventId: event.eventId,
      streamId: event.streamId,
      revision: event.revision,
      type: event.type,
      data: event.data,
      metadata: event.metadata,
    });
    expect((await readAllEvents(target)).map(strip)).toEqual(
      (await readAllEvents(store)).map(strip),
    );
  });
});

describe('segment files', () => {
  it('a scan finds count, first and last events across chunk boundaries, and any mismatch', async () => {
    const { store } = clockedStore();
    const dir = tempDir();
    for (let i = 0; i < 40; i++)
      await store.appendToStream(`order-${i % 3}`, [
        { type: 'Big', data: { i, blob: 'x'.repeat(20_000 + i * 997) }, metadata: { actor: 'a' } },
      ]);
    const manifest = await takeBackup({ store, dir, kind: 'full', storeInfo, segmentEvents: 25 });
    const [first, second] = manifest.segments;
    const path = (file: string): string => join(dir, manifest.backupId, file);
    expect(await scanSegment(path(first!.file), first!)).toBeUndefined();
    expect(await scanSegment(path(second!.file), second!)).toBeUndefined();
    expect(await scanSegment(path(second!.file), { ...second!, lastPosition: '39' })).toBe(
      'last event is at position 40, the manifest says 39',
    );
    expect(await scanSegment(path(first!.file), { ...first!, firstPosition: '2' })).toBe(
      'first event is at position 1, the manifest says 2',
    );
    expect(await scanSegment(path(first!.file), { ...first!, count: 24 })).toBe(
      'holds 25 events, the manifest says 24',
    );
    expect(await scanSegment(path('segment-000009.ndjson.gz'), first!)).toBe('missing');
  });
});

describe('retention', () => {
  const DAY = 86_400_000;

  it('deletes what is older than the window unless the newest chain or a recent backup needs it', async () => {
    const dir = tempDir();
    const start = Date.parse('2026-01-01T02:00:00.000Z');
    const { store } = clockedStore();
    const take = async (day: number, kind: 'full' | 'incremental'): Promise<Manifest> => {
      await store.appendToStream('order-1', events(1, `day ${day}`));
      return takeBackup({ store, dir, kind, storeInfo, now: () => new Date(start + day * DAY) });
    };
    const oldFull = await take(0, 'full');
    const oldIncrement = await take(1, 'incremental');
    const baseFull = await take(10, 'full'); // older than the window, but day 35 builds on it
    const recentIncrement = await take(35, 'incremental');
    const newestFull = await take(40, 'full');

    const result = await applyRetention(dir, 30, new Date(start + 41 * DAY));
    expect(result.removed.sort()).toEqual([oldFull.backupId, oldIncrement.backupId].sort());
    expect(readdirSync(dir).sort()).toEqual(
      [baseFull.backupId, recentIncrement.backupId, newestFull.backupId].sort(),
    );
    expect((await verifyBackups(dir)).ok).toBe(true);
  });

  it('never deletes the newest restorable chain, however old, and nothing when no chain is whole', async () => {
    const dir = tempDir();
    const start = Date.parse('2026-01-01T02:00:00.000Z');
    const { store } = clockedStore();
    await store.appendToStream('order-1', events(1, 'a'));
    const full = await takeBackup({
      store,
      dir,
      kind: 'full',
      storeInfo,
      now: () => new Date(start),
    });
    await store.appendToStream('order-1', events(1, 'b'));
    const next = await takeBackup({
      store,
      dir,
      kind: 'incremental',
      storeInfo,
      now: () => new Date(start + DAY),
    });
    expect((await applyRetention(dir, 30, new Date(start + 365 * DAY))).removed).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual([full.backupId, next.backupId].sort());

    rmSync(join(dir, full.backupId, 'segment-000001.ndjson.gz'));
    expect((await applyRetention(dir, 30, new Date(start + 365 * DAY))).removed).toEqual([]);
    expect((await loadCatalog(dir)).entries).toHaveLength(2);
  });
});

describe('backup configuration', () => {
  it('has defaults: daily at 02:00 UTC, 30 days, a folder in the data folder', () => {
    const config = loadConfig({});
    expect(config.QCAT_BACKUP_SCHEDULE).toBe('0 2 * * *');
    expect(config.QCAT_BACKUP_RETENTION_DAYS).toBe(30);
    expect(backupDir(config)).toBe(join('.qcat-data', 'backups'));
    expect(backupDir(loadConfig({ QCAT_BACKUP_DIR: '/srv/qcat-backups' }))).toBe(
      '/srv/qcat-backups',
    );
    expect(nextRun('0 2 * * *', new Date('2026-11-26T03:00:00Z'))).toEqual(
      new Date('2026-11-27T02:00:00.000Z'),
    );
  });

  it.each([
    [{ QCAT_BACKUP_SCHEDULE: '61 * * * *' }, 'QCAT_BACKUP_SCHEDULE', 'expected a cron expression'],
    [{ QCAT_BACKUP_SCHEDULE: 'daily' }, 'QCAT_BACKUP_SCHEDULE', 'expected a cron expression'],
    [{ QCAT_BACKUP_RETENTION_DAYS: '0' }, 'QCAT_BACKUP_RETENTION_DAYS', ''],
    [{ QCAT_BACKUP_RETENTION_DAYS: 'forever' }, 'QCAT_BACKUP_RETENTION_DAYS', ''],
  ])('refuses %o at start-up, naming %s', (env, name, message) => {
    let error: unknown;
    try {
      loadConfig(env);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toMatch(new RegExp(`^  ${name} \\(.*\\): .*${message}`, 'm'));
  });
});
