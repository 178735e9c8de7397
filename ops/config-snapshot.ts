/**
 * QCAT's settings as the configuration backup keeps them (backup/config-export.ts): every
 * variable of the parsed configuration with the passwords of its connection URLs masked, and
 * those passwords as the values no backup may contain.
 */
import { redact, type Config } from './config.js';

const URL_SETTINGS = [
  'DATABASE_URL',
  'REDIS_URL',
  'EVENTSTORE_URL',
  'QCAT_RESTORE_DRILL_URL',
] as const;

export function settingsForBackup(config: Config): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(config).map(([name, value]) => [
      name,
      typeof value === 'string' ? redact(value) : value,
    ]),
  );
}

/** The passwords (and user-info) of the configured connection URLs, decoded and as written. */
export function secretValues(config: Config, env: NodeJS.ProcessEnv = process.env): string[] {
  const secrets = new Set<string>();
  for (const name of URL_SETTINGS) {
    const value = config[name];
    if (!value) continue;
    try {
      const password = new URL(value).password;
      if (password) {
        secrets.add(password);
        secrets.add(decodeURIComponent(password));
      }
    } catch {
      // not a URL: nothing to mask
    }
  }
  // Secrets compose passes to other services never reach QCAT; any that do are guarded too.
  for (const [name, value] of Object.entries(env))
    if (value && /(PASSWORD|SECRET|TOKEN|WEBHOOK_URL)$/.test(name)) secrets.add(value);
  return [...secrets];
}
