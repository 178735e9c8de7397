/**
 * `qcat backup market`, `qcat backup config` and `qcat backup market-restore`: what the schedule
 * does beside the log backups (backup/extras.ts), run by hand.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from './config.js';
import type { BackupCliParts } from './backup-cli.js';
import { backupExtrasFor } from './backup-wiring.js';
import { importMarketData } from '../backup/market-export.js';

const consoleLog = {
  info: (message: string) => {
    console.log(message);
  },
  warn: (message: string) => {
    console.error(`qcat: ${message}`);
  },
};

export function registerBackupExtraCommands(program: Command, parts: BackupCliParts): void {
  const backup = program.commands.find((command) => command.name() === 'backup');
  if (!backup) throw new Error('register the backup commands first');

  backup
    .command('market')
    .description(
      'snapshot the market data (qcat_market) into the backup folder, then copy it to QCAT_BACKUP_COPY_DIR',
    )
    .action(() =>
      parts.withRuntime(async (runtime) => {
        const extras = backupExtrasFor(loadConfig(), {
          pool: runtime.pool,
          databaseUrl: runtime.databaseUrl,
          log: consoleLog,
        });
        await extras.afterScheduledBackup(undefined);
      }),
    );

  backup
    .command('config')
    .description(
      'back up the deployment files of QCAT_CONFIG_DIR and the settings (never secrets), then copy them',
    )
    .action(() =>
      parts.withRuntime(async (runtime) => {
        const extras = backupExtrasFor(loadConfig(), {
          pool: runtime.pool,
          databaseUrl: runtime.databaseUrl,
          log: consoleLog,
        });
        if (!(await extras.configBackup())) process.exitCode = 1;
      }),
    );

  backup
    .command('market-restore')
    .argument('<folder>', 'a market-<time> folder of the backup folder or its copy')
    .description(
      'load a market-data snapshot into qcat_market after checking its files; bars already stored are kept',
    )
    .action((folder: string) =>
      parts.withRuntime(async (runtime) => {
        try {
          const added = await importMarketData(runtime.pool, resolve(folder));
          console.log(
            `market data loaded: ${Object.entries(added)
              .map(([table, rows]) => `${rows} new ${table}`)
              .join(', ')}`,
          );
        } catch (error) {
          throw parts.fail((error as Error).message);
        }
      }),
    );
}
