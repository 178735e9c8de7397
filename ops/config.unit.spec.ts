import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigurationError, configSchema, loadConfig, redact } from './config.js';

const failure = (env: NodeJS.ProcessEnv): string => {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return (error as Error).message;
  }
  throw new Error('expected the configuration to be refused');
};

describe('configuration', () => {
  it('has defaults for everything optional', () => {
    expect(loadConfig({})).toEqual({
      PORT: 8082,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      QCAT_DATA_DIR: '.qcat-data',
      EVENT_STORE: 'postgres',
      DATABASE_POOL_MAX: 10,
      QCAT_REDIS_PREFIX: 'qcat:',
      CORS_ORIGINS: [],
      TRUST_PROXY: [],
      RATE_LIMIT_PER_MINUTE: 1200,
      AUTH_FAILURES_PER_MINUTE: 20,
      BODY_LIMIT_BYTES: 1048576,
      READ_CACHE_MB: 64,
      READY_MAX_LAG: 10000,
      IDEMPOTENCY_LEASE_SECONDS: 60,
      SNAPSHOT_EVERY: 200,
      QCAT_TRIAL_EXPIRE_SECONDS: 120,
      QCAT_BACKUP_SCHEDULE: '0 2 * * *',
      QCAT_BACKUP_RETENTION_DAYS: 30,
      QCAT_BACKUP_VERIFY_SCHEDULE: '30 3 * * *',
      QCAT_RESTORE_DRILL_SCHEDULE: '0 4 1 * *',
      QCAT_AUDIT_VERIFY_SCHEDULE: '15 * * * *',
      QCAT_CONFIG_BACKUP_SCHEDULE: '0 3 * * 0',
      QCAT_READ_MODEL_RETENTION_SCHEDULE: '45 4 * * *',
      AUTOMATION_CLOCK: 'wall',
      PAPER_TRADING: 'on',
      PAPER_INITIAL_CASH: 100_000,
      ENGINE_POLL_MS: 500,
      PAPER_SLIPPAGE_BPS: 5,
      PAPER_MAKER_FEE_BPS: 2,
      PAPER_TAKER_FEE_BPS: 5,
      PAPER_MAX_VOLUME_SHARE: 0.1,
      MARKET_FEED: 'none',
      MARKET_FEED_SPEED: 1,
      MARKET_FEED_SEED: 42,
      MARKET_FEED_HISTORY_HOURS: 24,
    });
  });

  it('takes the idempotency lease in seconds, from 5 to 3600', () => {
    expect(loadConfig({ IDEMPOTENCY_LEASE_SECONDS: '10' }).IDEMPOTENCY_LEASE_SECONDS).toBe(10);
    expect(() => loadConfig({ IDEMPOTENCY_LEASE_SECONDS: '1' })).toThrow(
      /IDEMPOTENCY_LEASE_SECONDS/,
    );
    expect(() => loadConfig({ IDEMPOTENCY_LEASE_SECONDS: '1.5' })).toThrow(
      /IDEMPOTENCY_LEASE_SECONDS/,
    );
  });

  it('takes the paper venue costs, the volume cap as a share or none', () => {
    expect(
      loadConfig({ PAPER_TAKER_FEE_BPS: '7.5', PAPER_MAX_VOLUME_SHARE: 'none' }),
    ).toMatchObject({ PAPER_TAKER_FEE_BPS: 7.5, PAPER_MAX_VOLUME_SHARE: null });
    expect(() => loadConfig({ PAPER_SLIPPAGE_BPS: '-1' })).toThrow(/PAPER_SLIPPAGE_BPS/);
    expect(() => loadConfig({ PAPER_MAX_VOLUME_SHARE: '0' })).toThrow(/PAPER_MAX_VOLUME_SHARE/);
    expect(() => loadConfig({ PAPER_MAX_VOLUME_SHARE: '1.5' })).toThrow(/PAPER_MAX_VOLUME_SHARE/);
  });

  it('archives the read model by itself only when given a retention in days', () => {
    const days = (value: string | undefined) =>
      loadConfig(value === undefined ? {} : { QCAT_READ_MODEL_RETENTION_DAYS: value })
        .QCAT_READ_MODEL_RETENTION_DAYS;
    expect([undefined, '', '0'].map(days)).toEqual([undefined, undefined, undefined]);
    expect(['1', ' 90 ', '36500'].map(days)).toEqual([1, 90, 36_500]);
  });

  it('treats a blank value as unset', () => {
    expect(loadConfig({ PORT: '  ', DATABASE_URL: '' })).toMatchObject({ PORT: 8082 });
    expect(loadConfig({ DATABASE_URL: '' }).DATABASE_URL).toBeUndefined();
  });

  it('splits the CORS allow-list', () => {
    expect(
      loadConfig({ CORS_ORIGINS: 'https://a.example.com, https://b.example.com' }).CORS_ORIGINS,
    ).toEqual(['https://a.example.com', 'https://b.example.com']);
  });

  it('reads the trusted proxies: addresses, CIDR ranges and named ranges', () => {
    expect(
      loadConfig({ TRUST_PROXY: '10.0.0.5, 172.16.0.0/12,fd00::/8 , uniquelocal' }).TRUST_PROXY,
    ).toEqual(['10.0.0.5', '172.16.0.0/12', 'fd00::/8', 'uniquelocal']);
  });

  it('reads given values', () => {
    const config = loadConfig({
      PORT: '9000',
      DATABASE_URL: 'postgres://u:p@db:5432/qcat',
      REDIS_URL: 'redis://cache:6379',
      EVENT_STORE: 'eventstoredb',
      EVENTSTORE_URL: 'esdb://esdb:2113?tls=false',
    });
    expect(config).toMatchObject({
      PORT: 9000,
      EVENT_STORE: 'eventstoredb',
      REDIS_URL: 'redis://cache:6379',
    });
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ PORT: '-1' }, 'PORT'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
    [{ EVENT_STORE: 'kafka' }, 'EVENT_STORE'],
    [{ QCAT_REDIS_PREFIX: 'has space' }, 'QCAT_REDIS_PREFIX'],
    [{ CORS_ORIGINS: 'not a url' }, 'CORS_ORIGINS'],
    [{ BODY_LIMIT_BYTES: '10' }, 'BODY_LIMIT_BYTES'],
    [{ TRUST_PROXY: 'true' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '10.0.0.0/33' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: 'nginx' }, 'TRUST_PROXY'],
    [{ READ_CACHE_MB: '-1' }, 'READ_CACHE_MB'],
    [{ SNAPSHOT_EVERY: '-1' }, 'SNAPSHOT_EVERY'],
    [{ EVENT_STORE: 'eventstoredb' }, 'EVENTSTORE_URL'],
    [{ QCAT_READ_MODEL_RETENTION_DAYS: '-1' }, 'QCAT_READ_MODEL_RETENTION_DAYS'],
    [{ QCAT_READ_MODEL_RETENTION_DAYS: '1.5' }, 'QCAT_READ_MODEL_RETENTION_DAYS'],
    [{ QCAT_READ_MODEL_RETENTION_DAYS: 'abc' }, 'QCAT_READ_MODEL_RETENTION_DAYS'],
    [{ QCAT_READ_MODEL_RETENTION_DAYS: '36501' }, 'QCAT_READ_MODEL_RETENTION_DAYS'],
    [{ QCAT_READ_MODEL_RETENTION_SCHEDULE: 'daily' }, 'QCAT_READ_MODEL_RETENTION_SCHEDULE'],
  ])('refuses %o naming %s', (env, name) => {
    expect(failure(env)).toMatch(new RegExp(`^  ${name} \\(`, 'm'));
  });

  it('names every bad variable at once, and never prints a password', () => {
    const message = failure({ PORT: 'x', DATABASE_URL: 'mysql://admin:hunter2@db/qcat' });
    expect(message).toContain('PORT');
    expect(message).toContain('DATABASE_URL');
    expect(message).not.toContain('hunter2');
  });

  it('redacts passwords in URLs', () => {
    expect(redact('postgres://qcat:s3cret@db:5432/qcat')).toBe('postgres://qcat:***@db:5432/qcat');
    expect(redact('redis://cache:6379')).toBe('redis://cache:6379');
  });

  it('is documented, variable by variable, in the README configuration table', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Commands'));
    const documented = [...table.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((match) => match[1]);
    const declared = Object.keys(configSchema.shape);
    for (const name of declared) expect(documented).toContain(name);
    const testOnly = ['TEST_DATABASE_URL', 'BENCH_DATABASE_URL', 'QCAT_TEST_INSTALL', 'CI'];
    for (const name of documented) expect([...declared, ...testOnly]).toContain(name);
  });
});
