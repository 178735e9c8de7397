#!/usr/bin/env node
import { Command } from 'commander';
import { migrate } from '../core/adapters/postgres/migrations.js';
import { createPool } from '../core/adapters/postgres/pool.js';
import { QcatError, toError } from '../core/errors.js';
import {
  ConfigurationError,
  MAX_RETENTION_DAYS,
  loadConfig,
  redact,
  type Config,
} from './config.js';
import type { Runtime } from './runtime.js';
import { userInfo } from 'node:os';
import { ROLES, isRole } from '../core/access/roles.js';
import { ApiKeyService } from '../api/auth/api-key-service.js';
import { registerBackupCommands } from './backup-cli.js';
import { registerBackupExtraCommands } from './backup-extras-cli.js';
import { archiveTrading } from '../projections/retention-queries.js';
import { describeArchive } from './read-model-retention.js';
import { registerMarketCommands } from './market-commands.js';
import { registerOptimizeCommands } from './optimize-commands.js';
import { registerPortfolioCommands } from './portfolio-commands.js';
import { registerWorkerCommand } from './worker-command.js';

/** A mistake in how the command was called: its message is the whole answer. */
class UsageError extends Error {}

/** Who ran a CLI command, for the events it writes. */
const cliActor = (): string => `cli:${userInfo().username}`;

const program = new Command()
  .name('qcat')
  .description(
    'QCAT: event-sourced trading core. Configuration comes from the environment (see README.md).',
  )
  .showHelpAfterError();

program
  .command('serve')
  .description(
    'start QCAT: the event store, then the HTTP API (embedded PostgreSQL when DATABASE_URL is unset)',
  )
  .option('--demo', 'turn the synthetic market feed on and seed three approved paper strategies')
  .option('--speed <n>', 'synthetic feed speed: 1 = real time, 60 = an hour a minute (demo: 60)')
  .action(async (options: { demo?: boolean; speed?: string }) => {
    // The HTTP server's modules load only for `serve`: every other command starts faster.
    const { startServer } = await import('./server.js');
    const server = await startServer(serveConfig(options));
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      server.fastify.log.info(`${signal}: shutting down`);
      server.stop().then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(toError(error).message);
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    // After the handlers: a stop during start-up must still be a clean one.
    await server.runtime.backups.startSchedule(); // runs only while this process leads it
    await server.runtime.maintenance.start(); // daily verify, monthly restore drill: leader only
    await server.runtime.backupExtras.start(); // weekly configuration backup: leader only
    await server.runtime.chainVerification.start(); // hourly incremental hash-chain verify: leader only
    await server.runtime.readModelRetention.start(); // daily archive when configured: leader only
    if (options.demo) {
      const log = {
        info: (m: string) => {
          server.fastify.log.info(m);
        },
        warn: (m: string) => {
          server.fastify.log.warn(m);
        },
      };
      // Another process seeding at the same moment makes a step refuse: the server stays up.
      const { seedDemo } = await import('./demo.js');
      await seedDemo(server.runtime.commands, server.runtime.eventStore, log).catch(
        (error: unknown) => {
          log.warn(`demo: seeding stopped: ${toError(error).message}`);
        },
      );
    }
  });

/** The configuration with `serve`'s flags applied on top of the environment. */
function serveConfig(options: { demo?: boolean; speed?: string }): Config {
  const config = loadConfig();
  let speed = config.MARKET_FEED_SPEED;
  if (options.speed !== undefined) {
    speed = Number(options.speed);
    if (!Number.isFinite(speed) || speed < 1 || speed > 10_000)
      throw new UsageError(
        `--speed: expected a number from 1 to 10000, got ${JSON.stringify(options.speed)}`,
      );
  } else if (options.demo && process.env['MARKET_FEED_SPEED'] === undefined) speed = 60;
  return {
    ...config,
    MARKET_FEED: options.demo || options.speed !== undefined ? 'synthetic' : config.MARKET_FEED,
    MARKET_FEED_SPEED: speed,
  };
}

program
  .command('migrate')
  .description('apply pending PostgreSQL event-log migrations to DATABASE_URL and exit')
  .action(async () => {
    const config = loadConfig();
    if (!config.DATABASE_URL)
      throw new ConfigurationError('DATABASE_URL (unset): required by `qcat migrate`');
    const pool = createPool({ connectionString: config.DATABASE_URL, max: 1 });
    try {
      const applied = await migrate(pool);
      console.log(
        applied.length === 0
          ? `${redact(config.DATABASE_URL)}: schema is up to date`
          : `${redact(config.DATABASE_URL)}: applied migrations ${applied.join(', ')}`,
      );
    } finally {
      await pool.end();
    }
  });

/** The runtime without HTTP, for one-off commands; closed when the work is done. */
async function withRuntime<T>(work: (runtime: Runtime) => Promise<T>): Promise<T> {
  // One-off commands print their own results; start-up chatter would only be noise.
  const quiet = { info: () => undefined, warn: () => undefined };

  const { openRuntime } = await import('./runtime.js');
  const runtime = await openRuntime(loadConfig(), quiet);
  try {
    return await work(runtime);
  } finally {
    await runtime.close();
  }
}

const projections = program.command('projections').description('inspect and rebuild read models');

projections
  .command('status')
  .description(
    'every projection: state, checkpoint, head, lag, leader, last error and parked events',
  )
  .option('--json', 'print JSON instead of a table')
  .action(async (options: { json?: boolean }) => {
    const rows = await withRuntime(async (runtime) => {
      await runtime.projections.register();
      return runtime.projections.status();
    });
    if (options.json) {
      console.log(
        JSON.stringify(
          rows,
          (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value),
          2,
        ),
      );
      return;
    }
    console.table(
      rows.map((row) => ({
        name: row.name,
        kind: row.kind,
        state: row.state,
        checkpoint: row.checkpoint.toString(),
        head: row.head.toString(),
        lag: row.lag.toString(),
        leader: row.leader ?? '',
        error: row.error ? `at ${row.error.position.toString()}: ${row.error.message}` : '',
        // ADR 011: what it does with an event it cannot apply, and how many it parked.
        poison: row.onPoisonEvent,
        parked: row.lastParked
          ? `${row.parked.toString()} (last at ${row.lastParked.position.toString()}: ${row.lastParked.error})`
          : row.parked.toString(),
      })),
    );
  });

projections
  .command('rebuild')
  .description(
    'rebuild NAME from position 0 into a shadow copy while the live one serves, then switch',
  )
  .argument('<name>', 'projection name (see `qcat projections status`)')
  .action(async (name: string) => {
    await withRuntime(async (runtime) => {
      await runtime.projections.register();
      const target = runtime.projections.target(name);
      if (!target) {
        throw new UsageError(
          `unknown projection '${name}'; known: ${runtime.projections.names().join(', ')}`,
        );
      }
      const started = Date.now();
      let reported = 0;
      const result = await target.rebuild(runtime.eventStore, {
        onProgress: (progress) => {
          if (Date.now() - reported < 1000) return;
          reported = Date.now();
          console.error(
            `${name}: ${progress.events} events, at position ${progress.checkpoint.toString()}`,
          );
        },
      });
      const seconds = (Date.now() - started) / 1000;
      console.log(
        `${name}: rebuilt generation ${result.generation} from ${result.events} events up to position ${result.checkpoint.toString()} in ${seconds.toFixed(1)} s; now live`,
      );
    });
  });

projections
  .command('archive')
  .description(
    'move closed orders, their fills and valuations older than N days out of the trading read model into its archive tables (ADR 032)',
  )
  .option('--older-than-days <days>', 'the retention horizon', '90')
  .action(async (options: { olderThanDays: string }) => {
    // Checked before anything opens: a bad value changes nothing.
    const days = /^\d{1,6}$/.test(options.olderThanDays) ? Number(options.olderThanDays) : 0;
    if (days < 1 || days > MAX_RETENTION_DAYS)
      throw new UsageError(
        `--older-than-days '${options.olderThanDays}': expected a whole number of days from 1 to ${MAX_RETENTION_DAYS}`,
      );
    await withRuntime(async (runtime) => {
      const result = await archiveTrading(runtime.pool, new Date(Date.now() - days * 86_400_000));
      console.log(describeArchive(result, days));
    });
  });

const keys = program
  .command('keys')
  .description('API keys: issue, list, revoke (each change is an audited event)');

keys
  .command('create')
  .description('issue an API key and print its token (shown only now)')
  .requiredOption('--role <role>', `one of: ${ROLES.join(', ')}`)
  .requiredOption('--name <name>', 'who or what the key is for')
  .action(async (options: { role: string; name: string }) => {
    const role = options.role;
    if (!isRole(role)) throw new UsageError(`--role '${role}' is not one of: ${ROLES.join(', ')}`);
    const name = options.name.trim();
    if (name === '' || name.length > 100)
      throw new UsageError('--name must be 1 to 100 characters');
    await withRuntime(async (runtime) => {
      const issued = await new ApiKeyService(runtime.commands).issue(name, role, cliActor());
      console.log(`created ${role} key ${issued.keyId} for '${name}'. Token (shown only now):`);
      console.log(issued.token);
    });
  });

keys
  .command('list')
  .description('every API key with its role and status (never a secret)')
  .action(async () => {
    const rows = await withRuntime(async (runtime) => {
      await runtime.projections.register();
      const result = await runtime.pool.query<{
        key_id: string;
        name: string;
        role: string;
        status: string;
        issued_at: Date;
      }>(
        'SELECT key_id, name, role, status, issued_at FROM qcat_private.api_keys ORDER BY issued_at, key_id',
      );
      const status = (await runtime.projections.status()).find((row) => row.name === 'api_keys');
      if (status && status.lag > 0n) {
        console.error(
          `note: the api_keys read model is ${status.lag.toString()} event${status.lag === 1n ? '' : 's'} behind the log (${status.state}); keys issued, rotated or revoked since are not shown until a running \`qcat serve\` projects them`,
        );
      }
      return result.rows;
    });
    console.table(
      rows.map((row) => ({
        keyId: row.key_id,
        name: row.name,
        role: row.role,
        status: row.status,
        issuedAt: row.issued_at.toISOString(),
      })),
    );
  });

keys
  .command('revoke')
  .description('revoke an API key; it stops working within seconds everywhere')
  .argument('<keyId>', 'the key id (the part after qcat_ in the token)')
  .option('--reason <reason>', 'why, for the audit trail', 'revoked from the command line')
  .action(async (keyId: string, options: { reason: string }) => {
    if (!/^[a-z0-9]{16}$/.test(keyId)) {
      throw new UsageError(`'${keyId}' is not a key id (16 lower-case letters and digits)`);
    }
    await withRuntime(async (runtime) => {
      const result = await new ApiKeyService(runtime.commands).revoke(
        keyId,
        options.reason,
        cliActor(),
      );
      console.log(
        result.eventCount === 0 ? `key ${keyId} was already revoked` : `revoked key ${keyId}`,
      );
    });
  });

program
  .command('audit')
  .description('audit the log (see docs/adr/005-tamper-evident-log.md)')
  .command('verify')
  .description(
    'walk the whole log, check every hash link, position and revision, and name the first broken link; exit code 2 when one is found',
  )
  .option('--to-position <position>', 'verify up to this position (default: the head)')
  .option('--json', 'print the report as JSON')
  .action(async (options: { toPosition?: string; json?: boolean }) => {
    const { verifyLog, verifyOptionsFor } = await import('../core/audit/verify.js');
    const { nodeSha256 } = await import('../core/adapters/node-sha256.js');
    if (options.toPosition !== undefined && !/^\d{1,19}$/.test(options.toPosition))
      throw new UsageError(`--to-position '${options.toPosition}' is not a position`);
    let reported = Date.now();
    const report = await withRuntime((runtime) =>
      verifyLog(runtime.eventStore, {
        ...verifyOptionsFor(runtime.config.EVENT_STORE),
        sha256: nodeSha256,
        ...(options.toPosition === undefined ? {} : { toPosition: BigInt(options.toPosition) }),
        onProgress: (checked, position) => {
          if (Date.now() - reported < 1000) return;
          reported = Date.now();
          console.error(`verified ${checked} events, at position ${position.toString()}`);
        },
      }),
    );
    const broken = report.firstBroken;
    if (options.json) {
      console.log(
        JSON.stringify(
          report,
          (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value),
          2,
        ),
      );
    } else if (!broken) {
      console.log(
        `log intact: ${report.eventsChecked} events in ${report.streams} streams up to position ${report.verifiedTo.toString()} (head ${report.headPosition.toString()})`,
      );
      console.log(`digest ${report.digest ?? ''}`);
    } else {
      const where = broken.streamId
        ? ` ('${broken.streamId}'@${broken.revision?.toString() ?? '?'}, event ${broken.eventId ?? '?'})`
        : '';
      console.log(
        `BROKEN at position ${broken.position.toString()}${where}: ${broken.reason}\n  ${broken.detail}\n  expected ${broken.expected}\n  found    ${broken.found}\n  ${report.eventsChecked} events before it verified`,
      );
    }
    if (broken) process.exitCode = 2;
  });

registerBackupCommands(program, {
  withRuntime,
  fail: (message) => new UsageError(message),
});

registerBackupExtraCommands(program, {
  withRuntime,
  fail: (message) => new UsageError(message),
});

registerMarketCommands(program, { withRuntime, fail: (message) => new UsageError(message) });
registerWorkerCommand(program, (message) => new UsageError(message));
registerOptimizeCommands(program, {
  withRuntime,
  fail: (message) => new UsageError(message),
  actor: cliActor,
});

registerPortfolioCommands(program, {
  withRuntime,
  fail: (message) => new UsageError(message),
  actor: cliActor,
});

program.parseAsync().catch((error: unknown) => {
  const failure = toError(error);
  // Expected failures (bad usage or configuration, a refusal with a code) get their message;
  // anything else also gets its stack for the operator.
  const expected = failure instanceof ConfigurationError || failure instanceof UsageError;
  if (expected) console.error(`qcat: ${failure.message}`);
  else if (failure instanceof QcatError)
    console.error(`qcat: ${failure.message} (${failure.code})`);
  else console.error(`qcat: ${failure.stack ?? failure.message}`);
  process.exit(1);
});
