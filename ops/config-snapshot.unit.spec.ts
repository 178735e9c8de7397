import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { secretValues, settingsForBackup } from './config-snapshot.js';

describe('settings for the configuration backup', () => {
  const env = {
    DATABASE_URL: 'postgres://qcat_app:p%40ss-db-1234@postgres:5432/qcat',
    REDIS_URL: 'redis://:redis-pass-5678@redis:6379',
    QCAT_BOOTSTRAP_TOKEN_FILE: '/var/lib/qcat-secrets/admin-token',
    GRAFANA_PG_PASSWORD: 'grafana-pass-9012',
  };
  const config = loadConfig(env);

  it('masks the passwords of connection URLs and keeps the rest', () => {
    const settings = settingsForBackup(config);
    expect(settings.DATABASE_URL).toBe('postgres://qcat_app:***@postgres:5432/qcat');
    expect(settings.PORT).toBe(8082);
    expect(JSON.stringify(settings)).not.toMatch(/p%40ss-db-1234|p@ss-db-1234|redis-pass-5678/);
  });

  it('knows the passwords no backup may hold, not the paths of token files', () => {
    const secrets = secretValues(config, env);
    expect(secrets).toEqual(
      expect.arrayContaining([
        'p%40ss-db-1234',
        'p@ss-db-1234',
        'redis-pass-5678',
        'grafana-pass-9012',
      ]),
    );
    expect(secrets).not.toContain('/var/lib/qcat-secrets/admin-token');
  });
});
