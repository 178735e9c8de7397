import { isIP } from 'node:net';
import { z } from 'zod';
import { DEFAULT_SCHEDULE, scheduleProblem } from '../backup/cron.js';

/** Blank means unset, so `PORT=` in a .env file falls back to the default instead of failing. */
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess(
    (value) => (typeof value === 'string' && value.trim() === '' ? undefined : value),
    schema.optional(),
  );

const postgresUrl = z
  .string()
  .trim()
  .refine(
    (value) => /^postgres(ql)?:\/\/.+/.test(value),
    'expected a postgres:// or postgresql:// URL',
  );

/** What Fastify's `trustProxy` (proxy-addr) takes: an address, a CIDR range or a named range. */
function isProxyAddress(entry: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/** The longest retention horizon, in days (100 years), of the job and of `projections archive`. */
export const MAX_RETENTION_DAYS = 36_500;
const RETENTION_DAYS_EXPECTED = `expected a whole number of days from 1 to ${MAX_RETENTION_DAYS}, or 0 (or unset) for no automatic archive`;

/**
 * Every environment variable QCAT reads, in one place. README.md's configuration table mirrors
 * this schema; `configuration.unit.spec.ts` keeps them in step.
 */
export const configSchema = z
  .object({
    PORT: optional(z.coerce.number().int().min(0).max(65535)).default(8082),
    HOST: optional(z.string().trim()).default('127.0.0.1'),
    LOG_LEVEL: optional(
      z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    ).default('info'),
    DATABASE_URL: optional(postgresUrl),
    DATABASE_POOL_MAX: optional(z.coerce.number().int().min(2).max(200)).default(10),
    QCAT_DATA_DIR: optional(z.string().trim()).default('.qcat-data'),
    EVENT_STORE: optional(z.enum(['postgres', 'eventstoredb'])).default('postgres'),
    EVENTSTORE_URL: optional(
      z
        .string()
        .trim()
        .refine(
          (value) => value.startsWith('esdb://') || value.startsWith('esdb+discover://'),
          'expected an esdb:// URL',
        ),
    ),
    REDIS_URL: optional(
      z
        .string()
        .trim()
        .refine((value) => /^rediss?:\/\/.+/.test(value), 'expected a redis:// or rediss:// URL'),
    ),
    CORS_ORIGINS: optional(
      z
        .string()
        .trim()
        .transform((value) =>
          value
            .split(',')
            .map((origin) => origin.trim())
            .filter(Boolean),
        )
        .pipe(
          z.array(
            z.url({
              message: 'expected a comma-separated list of origins such as https://ops.example.com',
            }),
          ),
        ),
    ).default([]),
    // Proxies whose X-Forwarded-For is believed: the client address (rate limit, failed
    // authentications, logs) is then the one the nearest untrusted hop gave. Empty: none.
    TRUST_PROXY: optional(
      z
        .string()
        .trim()
        .transform((value) =>
          value
            .split(',')
            .map((entry) => entry.trim())
            .filter(Boolean),
        )
        .pipe(
          z.array(
            z.string().refine(isProxyAddress, {
              message:
                'expected comma-separated addresses or CIDR ranges of trusted proxies (10.0.0.5, 172.16.0.0/12, fd00::/8) or loopback, linklocal, uniquelocal',
            }),
          ),
        ),
    ).default([]),
    RATE_LIMIT_PER_MINUTE: optional(z.coerce.number().int().min(1)).default(1200),
    AUTH_FAILURES_PER_MINUTE: optional(z.coerce.number().int().min(1)).default(20),
    BODY_LIMIT_BYTES: optional(
      z.coerce
        .number()
        .int()
        .min(1024)
        .max(16 * 1024 * 1024),
    ).default(1024 * 1024),
    // Answers of read-model routes kept per process until their read model changes (ADR 009).
    READ_CACHE_MB: optional(z.coerce.number().min(0).max(4096)).default(64),
    READY_MAX_LAG: optional(z.coerce.number().int().min(0)).default(10_000),
    // How long an unfinished Idempotency-Key claim blocks a retry (409) before another process may
    // take it over: longer than the slowest command, or a live one could be run twice.
    IDEMPOTENCY_LEASE_SECONDS: optional(z.coerce.number().int().min(5).max(3600)).default(60),
    // Command-side snapshots (ADR 012): one is written once a load folds this many events after
    // the last one; 0 turns them off.
    SNAPSHOT_EVERY: optional(z.coerce.number().int().min(0).max(1_000_000)).default(200),
    // Distributed optimization trials (ADR 029): a trial a `qcat worker` has run this long is
    // thought lost (the worker died) and runs again elsewhere.
    QCAT_TRIAL_EXPIRE_SECONDS: optional(z.coerce.number().int().min(2).max(3600)).default(120),
    QCAT_REDIS_PREFIX: optional(
      z
        .string()
        .trim()
        .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'expected letters, digits and _.:- (at most 64)'),
    ).default('qcat:'),
    // Backups (backup/, docs/operations.md). Unset QCAT_BACKUP_DIR means QCAT_DATA_DIR/backups.
    QCAT_BACKUP_DIR: optional(z.string().trim()),
    QCAT_BACKUP_SCHEDULE: optional(
      z
        .string()
        .trim()
        .superRefine((value, context) => {
          const problem = scheduleProblem(value);
          if (problem)
            context.addIssue({
              code: 'custom',
              message: `expected a cron expression (minute hour day-of-month month day-of-week, UTC) such as "0 2 * * *": ${problem}`,
            });
        }),
    ).default(DEFAULT_SCHEDULE),
    QCAT_BACKUP_RETENTION_DAYS: optional(z.coerce.number().int().min(1)).default(30),
    // Scheduled `backup verify` (daily) and restore drill (monthly) into a scratch database
    // (backup/maintenance.ts); no drill while QCAT_RESTORE_DRILL_URL is unset.
    QCAT_BACKUP_VERIFY_SCHEDULE: optional(
      z
        .string()
        .trim()
        .refine(
          (value) => !scheduleProblem(value),
          'expected a cron expression such as "30 3 * * *"',
        ),
    ).default('30 3 * * *'),
    QCAT_RESTORE_DRILL_SCHEDULE: optional(
      z
        .string()
        .trim()
        .refine(
          (value) => !scheduleProblem(value),
          'expected a cron expression such as "0 4 1 * *"',
        ),
    ).default('0 4 1 * *'),
    // The second location of every finished backup (backup/folder-copy.ts): a mounted folder on
    // another disk or host; unset: no copy.
    QCAT_BACKUP_COPY_DIR: optional(z.string().trim().min(1)),
    // The weekly configuration backup (backup/config-export.ts) of the deployment files in
    // QCAT_CONFIG_DIR (the repository's layout); unset: none.
    QCAT_CONFIG_DIR: optional(z.string().trim().min(1)),
    QCAT_CONFIG_BACKUP_SCHEDULE: optional(
      z
        .string()
        .trim()
        .refine(
          (value) => !scheduleProblem(value),
          'expected a cron expression such as "0 3 * * 0"',
        ),
    ).default('0 3 * * 0'),
    // The incremental hash-chain verify (ops/chain-verification.ts, ADR 024): hourly by default.
    QCAT_AUDIT_VERIFY_SCHEDULE: optional(
      z
        .string()
        .trim()
        .refine(
          (value) => !scheduleProblem(value),
          'expected a cron expression such as "15 * * * *"',
        ),
    ).default('15 * * * *'),
    // The trading read model's retention job (ops/read-model-retention.ts, ADR 032): off unless
    // set; 0 is off too. Closed orders, their fills and valuations older than this many days move
    // to the archive on the schedule.
    QCAT_READ_MODEL_RETENTION_DAYS: optional(
      z
        .string()
        .trim()
        .regex(/^\d{1,6}$/, RETENTION_DAYS_EXPECTED)
        .transform(Number)
        .refine((days) => days <= MAX_RETENTION_DAYS, RETENTION_DAYS_EXPECTED),
    ).transform((days) => (days === 0 ? undefined : days)),
    QCAT_READ_MODEL_RETENTION_SCHEDULE: optional(
      z
        .string()
        .trim()
        .refine(
          (value) => !scheduleProblem(value),
          'expected a cron expression such as "45 4 * * *"',
        ),
    ).default('45 4 * * *'),
    QCAT_RESTORE_DRILL_URL: optional(
      z
        .string()
        .trim()
        .regex(/^postgres(ql)?:\/\//, 'expected postgres://…'),
    ),
    // Where the first start of an empty log writes the admin token (mode 0600) instead of
    // printing it: container logs are kept and shipped; a file on a volume is not.
    QCAT_BOOTSTRAP_TOKEN_FILE: optional(z.string().trim().min(1)),
    // What now is for automation's schedules (ADR 030): the wall clock, or the market's (the
    // newest stored 1h bar's close), to run automation over a market played faster than time.
    AUTOMATION_CLOCK: optional(z.enum(['wall', 'market'])).default('wall'),
    // Every process manager's tick interval instead of its own (default: each its own, 60 s).
    AUTOMATION_TICK_MS: optional(z.coerce.number().int().min(10).max(3_600_000)),
    // Paper trading (core/engine, ADR 008).
    PAPER_TRADING: optional(z.enum(['on', 'off'])).default('on'),
    PAPER_INITIAL_CASH: optional(z.coerce.number().positive().max(1e12)).default(100_000),
    ENGINE_POLL_MS: optional(z.coerce.number().int().min(50).max(60_000)).default(500),
    // The paper venue's costs (core/trading/venue.ts), recorded with each engine configuration.
    PAPER_SLIPPAGE_BPS: optional(z.coerce.number().min(0).max(1000)).default(5),
    PAPER_MAKER_FEE_BPS: optional(z.coerce.number().min(0).max(1000)).default(2),
    PAPER_TAKER_FEE_BPS: optional(z.coerce.number().min(0).max(1000)).default(5),
    PAPER_MAX_VOLUME_SHARE: optional(
      z.preprocess(
        (value) => (value === 'none' ? null : value),
        z.coerce.number().gt(0).max(1).nullable(),
      ),
    ).default(0.1),
    MARKET_FEED: optional(z.enum(['none', 'synthetic'])).default('none'),
    MARKET_FEED_SPEED: optional(z.coerce.number().min(1).max(10_000)).default(1),
    MARKET_FEED_SEED: optional(
      z.coerce
        .number()
        .int()
        .min(0)
        .max(2 ** 31 - 1),
    ).default(42),
    MARKET_FEED_HISTORY_HOURS: optional(
      z.coerce
        .number()
        .int()
        .min(0)
        .max(24 * 365),
    ).default(24),
  })
  .superRefine((config, context) => {
    if (config.EVENT_STORE === 'eventstoredb' && !config.EVENTSTORE_URL) {
      context.addIssue({
        code: 'custom',
        path: ['EVENTSTORE_URL'],
        message: 'required when EVENT_STORE=eventstoredb',
      });
    }
  });

export type Config = z.infer<typeof configSchema>;

/** Thrown at start-up; its message names every bad variable and what it expects. */
export class ConfigurationError extends Error {}

/** Hides a password in a URL-shaped value, so errors and logs never carry one. */
export const redact = (value: string): string =>
  value.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? 'environment');
    const value = env[name];
    const shown = value === undefined ? 'unset' : `'${redact(value)}'`;
    return `  ${name} (${shown}): ${issue.message}`;
  });
  throw new ConfigurationError(`invalid configuration:\n${lines.join('\n')}`);
}
