import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, inject, it } from 'vitest';

/**
 * What some integration specs need beyond Node and PostgreSQL: command-line tools from Debian
 * packages, and a Redis. The test command's setup (test/support/environment-setup.ts) installs the
 * packages when it can and starts a throw-away Redis; whatever is still missing, the specs that
 * need it are skipped with the reason printed, naming what to install. With CI=true a missing
 * one fails instead: CI must run everything.
 */

/** Each tool, the names its binary has, and the Debian package it comes with. */
export const TOOLS = {
  promtool: { binaries: ['promtool'], debianPackage: 'prometheus' },
  amtool: { binaries: ['amtool'], debianPackage: 'prometheus-alertmanager' },
  alertmanager: {
    binaries: ['alertmanager', 'prometheus-alertmanager'],
    debianPackage: 'prometheus-alertmanager',
  },
  nginx: { binaries: ['nginx'], debianPackage: 'nginx' },
  'docker-compose': { binaries: ['docker-compose'], debianPackage: 'docker-compose' },
  psql: { binaries: ['psql'], debianPackage: 'postgresql-client' },
  openssl: { binaries: ['openssl'], debianPackage: 'openssl' },
  chromium: { binaries: ['chromium', 'chromium-browser'], debianPackage: 'chromium' },
  'redis-server': { binaries: ['redis-server'], debianPackage: 'redis-server' },
  curl: { binaries: ['curl'], debianPackage: 'curl' },
  jq: { binaries: ['jq'], debianPackage: 'jq' },
} as const satisfies Record<string, { binaries: readonly string[]; debianPackage: string }>;

export type ToolName = keyof typeof TOOLS;
/** A tool, or `redis`: a Redis server to connect to (REDIS_URL or the setup's throw-away one). */
export type Need = ToolName | 'redis';

/**
 * QCAT_TEST_HIDE_TOOLS=promtool,nginx makes those count as missing: only for the test that checks
 * what a missing tool does (test/missing-tools.e2e.spec.ts).
 */
const hidden = (): Set<string> =>
  new Set((process.env['QCAT_TEST_HIDE_TOOLS'] ?? '').split(',').map((name) => name.trim()));

/** sbin folders too: nginx lives there, and users' PATHs often leave them out. */
const searchPath = (): string[] => [
  ...(process.env['PATH'] ?? '').split(delimiter).filter((dir) => dir !== ''),
  '/usr/local/sbin',
  '/usr/sbin',
  '/sbin',
];

const executable = (path: string): boolean => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** The full path of the tool's binary, or undefined when it is not installed. */
export function findTool(name: ToolName): string | undefined {
  if (hidden().has(name)) return undefined;
  for (const binary of TOOLS[name].binaries) {
    for (const dir of searchPath()) {
      const path = join(dir, binary);
      if (executable(path)) return path;
    }
  }
  return undefined;
}

/** The tool's path, inside a `describeNeeding` that names it (so it is there). */
export function toolPath(name: ToolName): string {
  const path = findTool(name);
  if (!path) throw new Error(`${name} is not installed (${installHint([name])})`);
  return path;
}

/** The Redis the setup provides: REDIS_URL, else a throw-away one; '' when there is none. */
export const testRedisUrl = (): string => inject('testRedisUrl');

/** How to get what is missing, in one phrase. */
export function installHint(missing: readonly Need[]): string {
  const packages = [
    ...new Set(
      missing.map((need) =>
        need === 'redis' ? TOOLS['redis-server'].debianPackage : TOOLS[need].debianPackage,
      ),
    ),
  ];
  const redis = missing.includes('redis') ? ' (or set REDIS_URL)' : '';
  return `apt-get install ${packages.join(' ')}${redis}`;
}

/** What of `needs` this machine lacks. */
export function missingNeeds(needs: readonly Need[]): Need[] {
  return needs.filter((need) =>
    need === 'redis' ? testRedisUrl() === '' : findTool(need) === undefined,
  );
}

export const strict = (): boolean => process.env['CI'] === 'true';

/**
 * `describe(title, body)` when everything in `needs` is here. Otherwise its tests are skipped and
 * the reason printed, naming what to install; with CI=true the block fails instead.
 */
export function describeNeeding(needs: readonly Need[], title: string, body: () => void): void {
  const missing = missingNeeds(needs);
  if (missing.length === 0) {
    describe(title, body);
    return;
  }
  const reason = `needs ${missing.join(', ')}, not found: ${installHint(missing)}`;
  if (strict()) {
    describe(title, () => {
      it('has what it needs (CI=true: a missing tool is a failure, not a skip)', () => {
        throw new Error(`${title}: ${reason}`);
      });
    });
    return;
  }
  console.warn(`skipped "${title}": ${reason}`);
  describe.skip(`${title} [skipped: ${reason}]`, body);
}
