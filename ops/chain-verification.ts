/**
 * The hash chain verified on a schedule, incrementally (issue 21, ADR 024): each run resumes after
 * the last verified position instead of walking from position 1, so its cost follows what the log
 * gained, not its size. The resume point (position, that event's hash, its commit time, the
 * running digest) lives in a status file in the backup folder: outside the database, where the
 * database's writers cannot move it forward, and shared by every replica for the gauges. Only the
 * process holding the schedule's advisory lock runs it (BackupScheduler).
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Gauge, type Registry } from 'prom-client';
import { z } from 'zod';
import { nodeSha256 } from '../core/adapters/node-sha256.js';
import { verifyLog, type VerifiedPoint, type VerifyReport } from '../core/audit/verify.js';
import type { EventStore } from '../core/eventstore/event-store.js';
import { BackupScheduler } from '../backup/schedule.js';

/** In the backup folder; loadCatalog reads only backup folders, so this file is left alone. */
export const CHAIN_STATUS_FILE = 'qcat-audit-chain.json';

const pointSchema = z.object({
  position: z.string().regex(/^\d{1,20}$/),
  hash: z.string().min(1),
  recordedAt: z.number(),
  digest: z.string().regex(/^[0-9a-f]{64}$/),
});
const statusSchema = z.object({
  /** Where the next run resumes: the last position found intact. */
  checkpoint: pointSchema.optional(),
  lastSuccess: z.iso.datetime().optional(),
  lastFailure: z.iso.datetime().optional(),
  /** Set while the last run found a broken link; cleared by a run that finds none. */
  broken: z
    .object({ position: z.string(), reason: z.string(), detail: z.string().max(1000) })
    .optional(),
  /** Events the last run checked (0 when nothing new). */
  lastRunEvents: z.number().int().nonnegative().optional(),
});
export type ChainStatus = z.infer<typeof statusSchema>;

/** The status file; empty when missing or unreadable (the next run then walks from position 1). */
export async function readChainStatus(dir: string): Promise<ChainStatus> {
  try {
    const parsed = statusSchema.safeParse(
      JSON.parse(await readFile(join(dir, CHAIN_STATUS_FILE), 'utf8')),
    );
    return parsed.success ? parsed.data : {};
  } catch {
    return {};
  }
}

async function writeChainStatus(dir: string, status: ChainStatus): Promise<void> {
  // Written aside, then renamed: a scrape or a crash never leaves half a file.
  const temporary = join(dir, `.${CHAIN_STATUS_FILE}.tmp`);
  await writeFile(temporary, JSON.stringify(status, null, 2));
  await rename(temporary, join(dir, CHAIN_STATUS_FILE));
}

const toPoint = (point: z.infer<typeof pointSchema>): VerifiedPoint => ({
  ...point,
  position: BigInt(point.position),
});

export interface ChainVerificationOptions {
  dir: string;
  store: Pick<EventStore, 'readAll' | 'headPosition' | 'readStream'>;
  /** How the store's chain is built (verifyOptionsFor). */
  verify: { time?: 'recordedAt' | 'none'; contiguousPositions?: boolean };
  /** The schedule's lock connection. */
  connectionString: string;
  schedule: string;
  log: { info(message: string): void; warn(message: string): void };
  now?: () => Date;
  batchSize?: number;
}

export class ChainVerification {
  private scheduler: BackupScheduler | undefined;

  constructor(private readonly options: ChainVerificationOptions) {}

  /**
   * One incremental run: from the saved checkpoint (position 1 without one) to the head. An intact
   * walk moves the checkpoint to the head; a broken one keeps it, so every later run finds the
   * break again until an operator deals with it (docs/runbooks/event-store.md).
   */
  async run(): Promise<VerifyReport> {
    const { dir, store, log } = this.options;
    const status = await readChainStatus(dir);
    const at = (this.options.now ?? (() => new Date()))().toISOString();
    const report = await verifyLog(store, {
      ...this.options.verify,
      sha256: nodeSha256,
      ...(status.checkpoint ? { from: toPoint(status.checkpoint) } : {}),
      ...(this.options.batchSize ? { batchSize: this.options.batchSize } : {}),
    });
    const broken = report.firstBroken;
    if (broken) {
      await writeChainStatus(dir, {
        ...status,
        lastFailure: at,
        lastRunEvents: report.eventsChecked,
        broken: {
          position: broken.position.toString(),
          reason: broken.reason,
          detail: broken.detail.slice(0, 1000),
        },
      });
      log.warn(
        `audit: scheduled hash-chain verify found a broken link at position ${broken.position.toString()} (${broken.reason}): ${broken.detail}`,
      );
      return report;
    }
    const checkpoint = report.checkpoint ?? status.checkpoint;
    await writeChainStatus(dir, {
      ...(checkpoint
        ? {
            checkpoint: {
              position: checkpoint.position.toString(),
              hash: checkpoint.hash,
              recordedAt: checkpoint.recordedAt,
              digest: checkpoint.digest,
            },
          }
        : {}),
      lastSuccess: at,
      ...(status.lastFailure ? { lastFailure: status.lastFailure } : {}),
      lastRunEvents: report.eventsChecked,
    });
    log.info(
      `audit: scheduled hash-chain verify: ${report.eventsChecked} events after position ${report.startedAfter.toString()} intact, up to ${report.verifiedTo.toString()}`,
    );
    return report;
  }

  async start(): Promise<void> {
    if (this.scheduler) return;
    const { log } = this.options;
    this.scheduler = new BackupScheduler({
      expression: this.options.schedule,
      connectionString: this.options.connectionString,
      lockKey: 'qcat.audit.verify',
      log: (message) => {
        log.info(message.replace(/^backups:/, 'audit (hash-chain verify):'));
      },
      run: async () => {
        await this.run().catch((error: unknown) => {
          log.warn(`audit: scheduled hash-chain verify could not run: ${(error as Error).message}`);
        });
      },
    });
    await this.scheduler.start();
  }

  async stop(): Promise<void> {
    await this.scheduler?.stop();
    this.scheduler = undefined;
  }
}

/** `audit_chain_*` gauges, read from the status file at each scrape by every replica. */
export function registerChainMetrics(registry: Registry, dir: string): void {
  const seconds = (iso: string | undefined): number => (iso ? Date.parse(iso) / 1000 : 0);
  const gauge = (name: string, help: string, value: (status: ChainStatus) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        this.set(value(await readChainStatus(dir)));
      },
    });
  gauge(
    'audit_chain_verify_last_success_timestamp_seconds',
    'Unix time the last scheduled hash-chain verify found the log intact up to its head; 0 until one did',
    (status) => seconds(status.lastSuccess),
  );
  gauge(
    'audit_chain_verified_position',
    'Last log position the scheduled hash-chain verify found intact (where its next run resumes)',
    (status) => Number(status.checkpoint?.position ?? 0),
  );
  gauge(
    'audit_chain_broken',
    '1 while the last scheduled hash-chain verify found a broken link, else 0',
    (status) => (status.broken ? 1 : 0),
  );
}
