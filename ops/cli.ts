#!/usr/bin/env node
import { Command } from 'commander';
import pg from 'pg';
import { migrate } from '../core/adapters/postgres/migrations.js';
import { toError } from '../core/errors.js';
import { startServer } from '../api/server.js';
import { ConfigurationError, loadConfig, redact } from './config.js';

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
  .action(async () => {
    const server = await startServer(loadConfig());
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
  });

program
  .command('migrate')
  .description('apply pending PostgreSQL event-log migrations to DATABASE_URL and exit')
  .action(async () => {
    const config = loadConfig();
    if (!config.DATABASE_URL)
      throw new ConfigurationError('DATABASE_URL (unset): required by `qcat migrate`');
    const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 1 });
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

program.parseAsync().catch((error: unknown) => {
  const failure = toError(error);
  // Expected failures get their message; anything else also gets its stack for the operator.
  console.error(
    failure instanceof ConfigurationError
      ? failure.message
      : `qcat: ${failure.stack ?? failure.message}`,
  );
  process.exit(1);
});
