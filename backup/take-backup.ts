/**
 * Takes a full or incremental backup of the log through the event store port (so it works the
 * same for every adapter), streaming: read a batch, write it to the current segment, repeat.
 * The backup is written in `.partial-<id>` and renamed to `<id>` once its manifest is on disk,
 * so a folder named by an id is always complete.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nodeSha256 } from '../core/adapters/node-sha256.js';
import { verifyLog, verifyOptionsFor } from '../core/audit/verify.js';
import type { EventStore, RecordedEvent } from '../core/eventstore/event-store.js';
import { PARTIAL_PREFIX, loadCatalog, newestRestorableChain } from './catalog.js';
import { BackupError } from './errors.js';
import {
  DEFAULT_SEGMENT_EVENTS,
  FORMAT,
  FORMAT_VERSION,
  MANIFEST_FILE,
  eventToLine,
  newBackupId,
  segmentFileName,
  type BackupKind,
  type ChainEnd,
  type Manifest,
  type SegmentEntry,
} from './format.js';
import { SegmentWriter, fsyncPath } from './segments.js';

export interface StoreInfo {
  /** `postgres`, `eventstoredb`, … */
  adapter: string;
  /** Where it is, without credentials. */
  location: string;
}

export interface TakeBackupOptions {
  store: EventStore;
  dir: string;
  kind: BackupKind;
  storeInfo: StoreInfo;
  /** Events per segment file; default 100,000. */
  segmentEvents?: number;
  /** Events per read from the store; default 5,000. */
  readBatch?: number;
  now?: () => Date;
  onProgress?: (events: number) => void;
  /** Told what the operator must know (a broken hash chain in the log backed up). */
  warn?: (message: string) => void;
}

/** An incremental with nothing new to back up: nothing is written. */
export class NothingNewError extends BackupError {
  constructor(readonly previous: Manifest) {
    super(
      `nothing new since backup ${previous.backupId} (the log ends at its position ${previous.positions.last}): no backup written`,
    );
  }
}

/**
 * The hash chain of the log up to `head`, as `qcat audit verify` walks it: a full backup copies
 * whatever the log holds, so a broken log is backed up as it is, with the break on record.
 */
async function checkLog(
  store: EventStore,
  adapter: string,
  head: bigint,
): Promise<NonNullable<Manifest['logCheck']>> {
  const report = await verifyLog(store, {
    ...verifyOptionsFor(adapter === 'eventstoredb' ? 'eventstoredb' : 'postgres'),
    sha256: nodeSha256,
    toPosition: head,
  });
  const broken = report.firstBroken;
  return {
    toPosition: head.toString(),
    problem: broken
      ? `${broken.reason} at position ${broken.position.toString()}: ${broken.detail}`
      : null,
  };
}

const chainEnd = (event: RecordedEvent): ChainEnd => ({
  position: event.position.toString(),
  eventId: event.eventId,
  streamId: event.streamId,
  revision: event.revision.toString(),
  recordedAt: event.recordedAt.toISOString(),
});

async function fsyncDir(path: string): Promise<void> {
  await fsyncPath(path).catch(() => undefined); // not every file system lets a folder be synced
}

/**
 * Why the log does not continue the chain that ends with `previous` (its event at the chain's last
 * position is not the one the chain ends with: a log restored to an earlier point, or another
 * log); undefined when it does.
 */
export async function continuityProblem(
  store: EventStore,
  previous: Manifest,
  head: bigint,
): Promise<string | undefined> {
  const end = previous.lastEvent;
  if (!end) return undefined;
  if (head < BigInt(end.position))
    return `the log ends at position ${head}, before the backup's end at ${end.position}`;
  const revision = BigInt(end.revision);
  const [event] = await store.readStream(end.streamId, {
    fromRevision: revision,
    toRevision: revision,
  });
  if (event?.eventId !== end.eventId || event.position.toString() !== end.position)
    return `its event ${end.streamId}@${end.revision} is ${event ? `${event.eventId} at position ${event.position}` : 'missing'}, the backup has ${end.eventId} at position ${end.position}`;
  return undefined;
}

export const chainContinues = async (
  store: EventStore,
  previous: Manifest,
  head: bigint,
): Promise<boolean> => (await continuityProblem(store, previous, head)) === undefined;

/** Writes one backup into `dir`; answers its manifest. */
export async function takeBackup(options: TakeBackupOptions): Promise<Manifest> {
  const { store, dir, kind } = options;
  const now = options.now ?? (() => new Date());
  const segmentEvents = options.segmentEvents ?? DEFAULT_SEGMENT_EVENTS;
  await mkdir(dir, { recursive: true });

  const previous = kind === 'incremental' ? await chainToExtend(dir) : undefined;
  const started = now();
  const startedMs = performance.now();
  const head = await store.headPosition();
  const problem = previous && (await continuityProblem(store, previous, head));
  if (previous && problem)
    throw new BackupError(
      `the log does not continue backup ${previous.backupId}: ${problem}; start a new chain with \`qcat backup full\``,
    );
  const after = previous ? BigInt(previous.positions.last) : 0n;
  if (previous && head <= after) throw new NothingNewError(previous);
  const logCheck =
    kind === 'full' ? await checkLog(store, options.storeInfo.adapter, head) : undefined;
  if (logCheck?.problem)
    options.warn?.(
      `the log's hash chain is broken (${logCheck.problem}); backing it up as it is and recording the break in the manifest. Run \`qcat audit verify\``,
    );

  const backupId = newBackupId(kind, started, randomBytes(2).toString('hex'));
  const partial = join(dir, `${PARTIAL_PREFIX}${backupId}`);
  await mkdir(partial);
  const writing: Writing = {
    partial,
    segmentEvents,
    segments: [],
    fields: new Set<string>(),
    cursor: after,
  };
  try {
    const total = await copyLog(options, writing, head);
    const manifest: Manifest = {
      format: FORMAT,
      formatVersion: FORMAT_VERSION,
      backupId,
      kind,
      previousBackupId: previous?.backupId ?? null,
      startedAt: started.toISOString(),
      completedAt: now().toISOString(),
      durationSeconds: Math.round(performance.now() - startedMs) / 1000,
      store: { adapter: options.storeInfo.adapter, location: options.storeInfo.location },
      ...contentOf(writing, after, total),
      lastEvent: writing.lastEvent ? chainEnd(writing.lastEvent) : (previous?.lastEvent ?? null),
      segmentEvents,
      ...(logCheck ? { logCheck } : {}),
      createdBy: `${hostname()}:${process.pid}`,
      segments: writing.segments,
    };
    await commit(manifest, partial, dir);
    return manifest;
  } catch (error) {
    writing.writer?.abort();
    await rm(partial, { recursive: true, force: true });
    throw error;
  }
}

/** The newest restorable chain's last backup, which an incremental extends; none fails. */
async function chainToExtend(dir: string): Promise<Manifest> {
  const chain = await newestRestorableChain(await loadCatalog(dir));
  const previous = chain?.at(-1);
  if (!previous)
    throw new BackupError(
      `no backup to build an incremental on in ${dir}; take one with \`qcat backup full\``,
    );
  return previous;
}

/** A backup being written: its folder, the segments closed so far, the one open, where it is. */
interface Writing {
  partial: string;
  segmentEvents: number;
  segments: SegmentEntry[];
  /** The fields of the events written (the manifest lists them). */
  fields: Set<string>;
  writer?: SegmentWriter | undefined;
  current?: { count: number; first: RecordedEvent; last: RecordedEvent } | undefined;
  /** The position of the last event written: each next one must be after it. */
  cursor: bigint;
  lastEvent?: RecordedEvent | undefined;
}

/** Copies the log after the cursor up to `head` into segments; answers how many events. */
async function copyLog(
  options: TakeBackupOptions,
  writing: Writing,
  head: bigint,
): Promise<number> {
  const { store } = options;
  const readBatch = options.readBatch ?? 5000;
  let total = 0;
  const read = (from: bigint): Promise<RecordedEvent[]> =>
    from >= head
      ? Promise.resolve([])
      : store.readAll({ after: from, toPosition: head, maxCount: readBatch });
  let pending = read(writing.cursor);
  for (;;) {
    const events = await pending;
    const batchEnd = events.at(-1);
    if (!batchEnd) break;
    // The next read runs while this batch is compressed and written.
    pending = read(batchEnd.position);
    pending.catch(() => undefined); // awaited next turn; never an unhandled rejection
    await writeEvents(writing, events);
    total += events.length;
    options.onProgress?.(total);
  }
  await closeSegment(writing);
  return total;
}

/** Writes a batch of events, opening a segment when none is open and closing each one full. */
async function writeEvents(writing: Writing, events: readonly RecordedEvent[]): Promise<void> {
  let index = 0;
  while (index < events.length) {
    writing.writer ??= new SegmentWriter(
      join(writing.partial, segmentFileName(writing.segments.length + 1)),
    );
    const room = writing.segmentEvents - (writing.current?.count ?? 0);
    const slice = events.slice(index, index + room);
    let text = '';
    for (const event of slice) {
      if (event.position <= writing.cursor)
        throw new BackupError(
          `the store returned position ${event.position} after ${writing.cursor}: refusing to write an out-of-order backup`,
        );
      writing.cursor = event.position;
      text += `${eventToLine(event)}\n`;
    }
    const first = slice[0];
    const last = slice.at(-1);
    if (!first || !last) break;
    for (const key of Object.keys(first)) writing.fields.add(key);
    await writing.writer.write(text);
    writing.current = {
      count: (writing.current?.count ?? 0) + slice.length,
      first: writing.current?.first ?? first,
      last,
    };
    writing.lastEvent = last;
    index += slice.length;
    if (writing.current.count >= writing.segmentEvents) await closeSegment(writing);
  }
}

/** Closes the open segment, if any, and records its entry. */
async function closeSegment(writing: Writing): Promise<void> {
  const { writer, current, segments } = writing;
  if (!writer || !current) return;
  const { sha256, bytes } = await writer.close();
  segments.push({
    file: segmentFileName(segments.length + 1),
    sha256,
    bytes,
    count: current.count,
    firstPosition: current.first.position.toString(),
    lastPosition: current.last.position.toString(),
    firstRecordedAt: current.first.recordedAt.toISOString(),
    lastRecordedAt: current.last.recordedAt.toISOString(),
  });
  writing.writer = undefined;
  writing.current = undefined;
}

/** What the segments hold, for the manifest: positions, times, events, bytes, event fields. */
function contentOf(
  { segments, fields }: Writing,
  after: bigint,
  total: number,
): Pick<Manifest, 'positions' | 'time' | 'eventCount' | 'bytes' | 'eventFields'> {
  return {
    positions: {
      after: after.toString(),
      first: segments[0]?.firstPosition ?? null,
      last: segments.at(-1)?.lastPosition ?? after.toString(),
    },
    time: {
      first: segments[0]?.firstRecordedAt ?? null,
      last: segments.at(-1)?.lastRecordedAt ?? null,
    },
    eventCount: total,
    bytes: segments.reduce((sum, segment) => sum + segment.bytes, 0),
    eventFields: [...fields].sort(),
  };
}

/** Writes the manifest, syncs it, then renames the folder: a folder named by an id is complete. */
async function commit(manifest: Manifest, partial: string, dir: string): Promise<void> {
  const manifestPath = join(partial, MANIFEST_FILE);
  await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`, { flag: 'wx' });
  const handle = await open(manifestPath, 'r');
  await handle.sync().finally(() => handle.close());
  await fsyncDir(partial);
  await rename(partial, join(dir, manifest.backupId));
  await fsyncDir(dir);
}
