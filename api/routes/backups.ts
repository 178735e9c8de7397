import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { backupDir } from '../../backup/backup-service.js';
import { backupOverview, lastDrill } from '../../backup/overview.js';
import type { ApiServices } from '../services.js';
import { pageLimit } from './conventions.js';

const instant = z.string().nullable();
const job = z.object({
  lastSuccess: instant,
  lastFailure: instant,
  lastProblem: z.string().nullable(),
  outcome: z.enum(['succeeded', 'failed', 'never']).describe('the newer of the last two'),
  at: instant.describe('when that outcome was recorded'),
});
const backup = z.object({
  backupId: z.string(),
  kind: z.enum(['full', 'incremental']).nullable(),
  previousBackupId: z.string().nullable(),
  completedAt: instant,
  positions: z
    .object({ after: z.string(), first: z.string().nullable(), last: z.string() })
    .nullable(),
  eventCount: z.number().int().nullable(),
  bytes: z.number().int().nullable(),
  logProblem: z
    .string()
    .nullable()
    .describe("a full backup's hash-chain check of the log it copied; null: intact or unchecked"),
  verification: z.object({
    status: z
      .enum(['verified', 'failed', 'unverified', 'unreadable'])
      .describe('what the last scheduled `backup verify` found of this backup'),
    at: instant,
  }),
  problem: z.string().nullable(),
});

/**
 * Operators' view of the backups (read-only): the backup folder's manifests and the outcomes the
 * scheduled verify, restore drill, market, configuration and copy jobs recorded (ADR 024).
 */
export const backupRoutes: FastifyPluginAsyncZod<{ runtime: Pick<ApiServices, 'config'> }> = async (
  fastify,
  { runtime },
) => {
  const dir = backupDir(runtime.config);
  fastify.get(
    '/backups',
    {
      config: { permission: 'backups:read' },
      schema: {
        tags: ['backups'],
        summary:
          'Backups, newest first, each with what the last scheduled verify found; the scheduled jobs’ last outcomes',
        querystring: z
          .object({
            after: z
              .string()
              .regex(/^\d{8}T\d{9}Z-(full|incremental)-[0-9a-f]{4}$/, 'expected a backup id')
              .optional()
              .describe('cursor: nextCursor of the previous page'),
            limit: pageLimit(1000, 100),
          })
          .strict(),
        response: {
          200: z.object({
            backups: z.array(backup),
            nextCursor: z.string().nullable(),
            partials: z.number().int().describe('backups being written or left by a crash'),
            verify: job,
            market: job,
            config: job,
            copy: job,
          }),
        },
      },
    },
    (request) => backupOverview(dir, request.query),
  );
  fastify.get(
    '/backups/drills',
    {
      config: { permission: 'backups:read' },
      schema: {
        tags: ['backups'],
        summary: 'The last restore drill into the scratch database: its outcome and when',
        response: {
          200: job.extend({
            schedule: z.string().describe('QCAT_RESTORE_DRILL_SCHEDULE (cron, UTC)'),
            configured: z.boolean().describe('false: QCAT_RESTORE_DRILL_URL unset, no drill runs'),
          }),
        },
      },
    },
    () =>
      lastDrill(dir, {
        schedule: runtime.config.QCAT_RESTORE_DRILL_SCHEDULE,
        scratchDatabase: Boolean(runtime.config.QCAT_RESTORE_DRILL_URL),
      }),
  );
};
