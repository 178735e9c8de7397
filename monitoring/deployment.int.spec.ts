import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { describeNeeding, toolPath } from '../test/support/tools.js';

/**
 * docker-compose.yml, .env.example, the Dockerfile and .dockerignore. No Docker engine runs here,
 * so the compose file is validated and resolved by docker-compose (Debian package
 * `docker-compose`; the test setup installs it) and the resolved result is checked: health checks, restart
 * policies, networks, published ports, volumes, retention, no secret in any file.
 */

const root = new URL('..', import.meta.url).pathname;

const SERVICES = [
  'alertmanager',
  'blackbox-exporter',
  'eventstoredb',
  'grafana',
  'migrate',
  'nginx',
  'node-exporter',
  'postgres',
  'postgres-exporter',
  'prometheus',
  'qcat',
  'redis',
  'redis-exporter',
];
/** Only reachable on the internal network. */
const BACK_ONLY = [
  'eventstoredb',
  'migrate',
  'postgres',
  'redis',
  'postgres-exporter',
  'redis-exporter',
  'node-exporter',
];
const SECRET = /PASSWORD|SECRET|TOKEN|WEBHOOK|WATCHDOG_URL/;

/** NAME=value lines of .env.example. */
function envExample(): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of readFileSync(join(root, '.env.example'), 'utf8').split('\n')) {
    const assignment = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (assignment) values.set(assignment[1]!, assignment[2]!);
  }
  return values;
}

/** A throw-away value for every secret .env.example leaves blank. */
function placeholderSecrets(): Record<string, string> {
  const secrets: Record<string, string> = {};
  for (const [name, value] of envExample())
    if (SECRET.test(name) && value === '') secrets[name] = `placeholder-${name.toLowerCase()}`;
  return secrets;
}

function compose(
  args: string[],
  env: Record<string, string>,
  input?: string,
): { status: number; stdout: string; stderr: string } {
  const binary = toolPath('docker-compose');
  // Only PATH and what the test gives: no variable of the machine leaks into the result.
  const result = spawnSync(binary, ['--env-file', '.env.example', ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...env },
    ...(input === undefined ? {} : { input }),
  });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

const portSchema = z.union([
  z.string(),
  z.looseObject({
    target: z.number(),
    published: z.union([z.number(), z.string()]),
    host_ip: z.string().optional(),
  }),
]);
const serviceSchema = z.looseObject({
  image: z.string().optional(),
  build: z.unknown().optional(),
  restart: z.string().optional(),
  healthcheck: z.looseObject({ test: z.array(z.string()) }).optional(),
  networks: z.record(z.string(), z.unknown()),
  ports: z.array(portSchema).optional(),
  volumes: z.array(z.string()).optional(),
  environment: z.record(z.string(), z.string().nullable()).optional(),
  command: z.union([z.string(), z.array(z.string())]).optional(),
  container_name: z.string().optional(),
  logging: z
    .looseObject({ driver: z.string(), options: z.record(z.string(), z.string()) })
    .optional(),
});
const composeSchema = z.looseObject({
  services: z.record(z.string(), serviceSchema),
  networks: z.record(z.string(), z.looseObject({ internal: z.boolean().optional() }).nullable()),
  volumes: z.record(z.string(), z.unknown()),
});

describeNeeding(['docker-compose'], 'docker-compose.yml', () => {
  const secrets = placeholderSecrets();

  it('.env.example leaves every secret blank and sets everything else', () => {
    const values = envExample();
    expect(values.size).toBeGreaterThan(15);
    for (const [name, value] of values) {
      if (SECRET.test(name)) expect(value, name).toBe('');
      // Blank means "off" for CORS; every other setting has a working value.
      else if (name !== 'QCAT_CORS_ORIGINS') expect(value, name).not.toBe('');
    }
    expect(Object.keys(secrets).sort()).toEqual(
      [
        'ALERT_SLACK_WEBHOOK_URL',
        'ALERT_SMTP_PASSWORD',
        'ALERT_WATCHDOG_URL',
        'GRAFANA_ADMIN_PASSWORD',
        'GRAFANA_PG_PASSWORD',
        'POSTGRES_EXPORTER_PASSWORD',
        'POSTGRES_PASSWORD',
        'QCAT_PG_APP_PASSWORD',
        'QCAT_PG_OWNER_PASSWORD',
        'REDIS_PASSWORD',
      ].sort(),
    );
  });

  it('uses exactly the variables .env.example documents', () => {
    const text = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
    const used = new Set([...text.matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!));
    expect([...used].sort()).toEqual([...envExample().keys()].sort());
  });

  it('docker-compose config -q accepts it once the secrets are set', () => {
    const result = compose(['config', '-q'], secrets);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('docker-compose config -q accepts it with the opt-in eventstoredb profile too', () => {
    const result = compose(['--profile', 'eventstoredb', 'config', '-q'], secrets);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('keeps the log in PostgreSQL by default; without the eventstoredb service the file still holds', () => {
    const file = z
      .looseObject({ services: z.record(z.string(), z.looseObject({})) })
      .parse(parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8')));
    expect(file.services['eventstoredb']?.['profiles']).toEqual(['eventstoredb']);
    for (const [name, service] of Object.entries(file.services))
      if (name !== 'eventstoredb') expect(service['profiles'], name).toBeUndefined();
    // Removing the service outright: nothing depends on it, so the file is still valid.
    delete file.services['eventstoredb'];
    const without = compose(
      ['-f', '-', '--project-directory', '.', 'config', '-q'],
      secrets,
      stringify(file, { version: '1.1' }), // docker-compose reads YAML 1.1: 'no' stays a string
    );
    expect(without.stderr).toBe('');
    expect(without.status).toBe(0);
  });

  it('refuses to start while a secret is blank, naming it', () => {
    const { POSTGRES_PASSWORD: _unset, ...others } = secrets;
    const result = compose(['config', '-q'], others);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('set POSTGRES_PASSWORD in .env');
  });

  describe('resolved', () => {
    const resolved = (): z.infer<typeof composeSchema> => {
      const result = compose(['config'], secrets);
      expect(result.status).toBe(0);
      return composeSchema.parse(parse(result.stdout));
    };

    it('runs every service issue #9 names, each with a health check, a restart policy and log rotation', () => {
      const config = resolved();
      expect(Object.keys(config.services).sort()).toEqual(SERVICES);
      for (const [name, service] of Object.entries(config.services)) {
        expect(service.logging?.options['max-size'], name).toBe('10m');
        // `migrate` runs once and exits: nothing to restart or to check the health of.
        if (name === 'migrate') {
          expect(service.restart, name).toBe('no');
          continue;
        }
        expect(service.restart, name).toBe('unless-stopped');
        expect(service.healthcheck?.test[0], name).toMatch(/^CMD(-SHELL)?$/);
        // Pinned images: a new upstream release is an upgrade someone chose.
        if (service.image !== undefined && name !== 'qcat')
          expect(service.image, name).toMatch(/:[\w.-]*\d[\w.-]*$/);
      }
    });

    it('keeps the data stores on the internal network and publishes only nginx to the world', () => {
      const config = resolved();
      expect(config.networks['back']?.internal).toBe(true);
      expect(config.networks['front']?.internal ?? false).toBe(false);
      for (const name of BACK_ONLY)
        expect(Object.keys(config.services[name]!.networks), name).toEqual(['back']);
      expect(Object.keys(config.services['nginx']!.networks)).toEqual(['front']);
      expect(Object.keys(config.services['qcat']!.networks).sort()).toEqual(['back', 'front']);

      for (const [name, service] of Object.entries(config.services)) {
        for (const port of service.ports ?? []) {
          const hostIp =
            typeof port === 'string' ? port.split(':').slice(0, -2).join(':') : port.host_ip;
          if (name === 'nginx') expect(hostIp ?? '', name).toBe('');
          else expect(hostIp, `${name} publishes on every address`).toBe('127.0.0.1');
        }
      }
      expect(
        config.services['nginx']!.ports?.map((p) => (typeof p === 'string' ? p : p.target)),
      ).toEqual([80, 443]);
      for (const name of ['qcat', ...BACK_ONLY])
        expect(config.services[name]!.ports, name).toBeUndefined();
      // Scaled with --scale: no fixed container name.
      expect(config.services['qcat']!.container_name).toBeUndefined();
    });

    it('keeps state in named volumes and mounts only files of this repository', () => {
      const config = resolved();
      const named = new Set(Object.keys(config.volumes));
      const mounts = (service: string): string[] => config.services[service]!.volumes ?? [];
      for (const [service, path] of [
        ['qcat', '/var/lib/qcat-backups'],
        ['postgres', '/var/lib/postgresql/data'],
        ['redis', '/data'],
        ['eventstoredb', '/var/lib/eventstore'],
        ['prometheus', '/prometheus'],
        ['alertmanager', '/alertmanager'],
        ['grafana', '/var/lib/grafana'],
      ] as const) {
        const mount = mounts(service).find((m) => m.split(':')[1] === path);
        expect(mount, `${service}:${path}`).toBeDefined();
        expect(named.has(mount!.split(':')[0]!), mount).toBe(true);
      }
      // The second location of the backups is a host folder the operator chooses (another disk or
      // a share, QCAT_BACKUP_COPY_PATH): outside the repository, and not a Docker volume.
      const copy = mounts('qcat').find((m) => m.split(':')[1] === '/var/lib/qcat-backups-copy');
      expect(copy, 'qcat: the second location of the backups').toBeDefined();
      expect(named.has(copy!.split(':')[0]!)).toBe(false);
      for (const [service, value] of Object.entries(config.services)) {
        for (const mount of value.volumes ?? []) {
          const source = mount.split(':')[0]!;
          if (!isAbsolute(source) || service === 'node-exporter' || mount === copy) continue;
          expect(relative(root, source).startsWith('..'), `${service}: ${mount}`).toBe(false);
          expect(existsSync(source), `${service}: ${source}`).toBe(true);
        }
      }
    });

    it('keeps Prometheus data 200 hours and wires QCAT to its data stores', () => {
      const config = resolved();
      expect(config.services['prometheus']!.command).toContain(
        '--storage.tsdb.retention.time=200h',
      );
      const env = config.services['qcat']!.environment!;
      // Least privilege (ADR 015): QCAT serves as qcat_app; migrations run as qcat_owner.
      expect(env['DATABASE_URL']).toBe(
        `postgres://qcat_app:${secrets['QCAT_PG_APP_PASSWORD']}@postgres:5432/qcat`,
      );
      expect(config.services['migrate']!.environment!['DATABASE_URL']).toBe(
        `postgres://qcat_owner:${secrets['QCAT_PG_OWNER_PASSWORD']}@postgres:5432/qcat`,
      );
      expect(config.services['migrate']!.command).toEqual(['migrate']);
      expect(config.services['qcat']!['depends_on']).toMatchObject({
        migrate: { condition: 'service_completed_successfully' },
      });
      expect(config.services['postgres']!.environment!['POSTGRES_USER']).toBe('postgres');
      // The first admin token goes to a file on its own volume, not to the container logs.
      expect(env['QCAT_BOOTSTRAP_TOKEN_FILE']).toBe('/var/lib/qcat-secrets/admin-token');
      expect(config.services['qcat']!.volumes).toContain('qcat-secrets:/var/lib/qcat-secrets:rw');
      expect(env['REDIS_URL']).toBe(`redis://:${secrets['REDIS_PASSWORD']}@redis:6379`);
      expect(env['EVENT_STORE']).toBe('postgres');
      expect(env['EVENTSTORE_URL']).toBe('esdb://eventstoredb:2113?tls=false');
      expect(env['HOST']).toBe('0.0.0.0');
    });

    it('takes every secret from the environment, none from a file', () => {
      const config = resolved();
      for (const [service, value] of Object.entries(config.services)) {
        for (const [name, setting] of Object.entries(value.environment ?? {})) {
          // *_FILE names where a secret is written (a path), not a secret.
          if (SECRET.test(name) && !name.endsWith('_FILE'))
            expect(Object.values(secrets), `${service}: ${name}`).toContain(setting);
        }
      }
    });
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const stages = dockerfile.split(/^FROM /m).slice(1);
  const runtime = stages.at(-1) ?? '';

  it('builds in stages and runs the production dependencies only, as a non-root user, with a health check', () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    expect(dockerfile).toMatch(/RUN npm ci --omit=dev/);
    expect(runtime).toContain('COPY --from=deps /app/node_modules ./node_modules');
    expect(runtime).toContain('COPY --from=build /app/dist ./dist');
    expect(runtime).not.toMatch(/npm (ci|install)/);
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toMatch(/^HEALTHCHECK .*\n?.*\/health\/live/m);
    expect(runtime).toMatch(/^ENTRYPOINT \["node", "dist\/ops\/cli\.js"\]$/m);
    // The built entry point exists where the image starts it.
    expect(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))).toMatchObject({
      bin: { qcat: 'dist/ops/cli.js' },
    });
  });

  it('has in its production dependencies every package the server imports', () => {
    const lock = z
      .object({ packages: z.record(z.string(), z.looseObject({ dev: z.boolean().optional() })) })
      .parse(JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')));
    const installed = (name: string): boolean => {
      const entry = lock.packages[`node_modules/${name}`];
      return entry !== undefined && entry.dev !== true;
    };
    const build = z
      .object({ include: z.array(z.string()), exclude: z.array(z.string()) })
      .parse(JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')));
    const missing: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (path.endsWith('.ts') && !path.endsWith('.spec.ts')) {
          const source = readFileSync(path, 'utf8');
          const imports = source.matchAll(
            /^(?:import|export)(?!\s+type\b)[^;]*?\bfrom\s+'([^']+)'|^import\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/gms,
          );
          for (const match of imports) {
            const specifier = match[1] ?? match[2] ?? match[3]!;
            if (specifier.startsWith('.') || specifier.startsWith('node:')) continue;
            const name = specifier.startsWith('@')
              ? specifier.split('/').slice(0, 2).join('/')
              : specifier.split('/')[0]!;
            if (!installed(name)) missing.push(`${relative(root, path)}: ${specifier}`);
          }
        }
      }
    };
    expect(build.exclude).toContain('**/*.spec.ts');
    for (const folder of build.include)
      if (existsSync(join(root, folder))) walk(join(root, folder));
    expect(missing).toEqual([]);
  });

  it('.dockerignore keeps secrets, local state and dependencies out of the build context', () => {
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n');
    for (const entry of [
      '.git',
      '.env',
      'node_modules',
      'dist',
      '.qcat-data',
      '.scratch',
      'ops/nginx/certs',
    ])
      expect(ignored, entry).toContain(entry);
  });
});
