/**
 * The committed nginx configuration (ops/nginx) rendered for a native run, as .ci/run does: listen
 * ports on 127.0.0.1, the replicas' addresses in upstream/qcat.conf, the access log in a file,
 * temp folders and a throw-away self-signed certificate. Then a real nginx serving it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { toolPath } from './tools.js';

const nginxDir = new URL('../../ops/nginx/', import.meta.url).pathname;

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function replaceOnce(text: string, pattern: RegExp, replacement: string): string {
  if ((text.match(new RegExp(pattern.source, 'gm')) ?? []).length !== 1)
    throw new Error(`expected one match of ${pattern.source}`);
  return text.replace(pattern, replacement);
}

/** upstream/qcat.conf with one `server` line per address, as committed otherwise. */
export function upstreamFor(addresses: readonly string[]): string {
  return replaceOnce(
    readFileSync(join(nginxDir, 'upstream/qcat.conf'), 'utf8'),
    /server qcat:8082 ([^;]*);/m,
    addresses.map((address) => `server ${address} $1;`).join('\n    '),
  );
}

export interface NginxEdge {
  prefix: string;
  /** `http://127.0.0.1:<port>` (redirects to HTTPS) */
  http: string;
  /** `https://localhost:<port>` */
  https: string;
  /** The certificate, to trust in requests. */
  certificate: string;
  accessLog: string;
  /** nginx's arguments for this prefix (`-s reload` after them). */
  args: string[];
  stop(): Promise<void>;
}

export async function startNginxEdge(
  prefix: string,
  replicas: readonly string[],
): Promise<NginxEdge> {
  const binary = toolPath('nginx');
  chmodSync(prefix, 0o755);
  for (const part of ['nginx.conf', 'conf.d', 'snippets', 'upstream'])
    cpSync(join(nginxDir, part), join(prefix, part), { recursive: true });
  for (const temp of ['body', 'proxy']) {
    mkdirSync(join(prefix, temp));
    chmodSync(join(prefix, temp), 0o777);
  }
  const httpPort = await freePort();
  const httpsPort = await freePort();
  const accessLog = join(prefix, 'access.log');
  const main = join(prefix, 'nginx.conf');
  writeFileSync(
    main,
    replaceOnce(
      readFileSync(main, 'utf8'),
      /^http \{$/m,
      `http {\n    client_body_temp_path ${prefix}/body;\n    proxy_temp_path ${prefix}/proxy;`,
    ).replace('access_log /dev/stdout qcat_json;', `access_log ${accessLog} qcat_json;`),
  );
  const site = join(prefix, 'conf.d/qcat.conf');
  let text = readFileSync(site, 'utf8');
  text = replaceOnce(text, /^\s*listen \[::\]:80 default_server;\n/m, '');
  text = replaceOnce(text, /^\s*listen \[::\]:443 ssl default_server;\n/m, '');
  text = replaceOnce(
    text,
    /listen 80 default_server;/,
    `listen 127.0.0.1:${httpPort} default_server;`,
  );
  text = replaceOnce(
    text,
    /listen 443 ssl default_server;/,
    `listen 127.0.0.1:${httpsPort} ssl default_server;`,
  );
  writeFileSync(site, text);
  writeFileSync(join(prefix, 'upstream/qcat.conf'), upstreamFor(replicas));
  mkdirSync(join(prefix, 'certs'), { recursive: true });
  const made = spawnSync(
    toolPath('openssl'),
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      join(prefix, 'certs/privkey.pem'),
      '-out',
      join(prefix, 'certs/fullchain.pem'),
    ],
    { encoding: 'utf8' },
  );
  if (made.status !== 0) throw new Error(`openssl: ${made.stderr}`);
  const args = ['-p', prefix, '-c', main, '-e', 'stderr', '-g', `pid ${prefix}/nginx.pid;`];
  const check = spawnSync(binary, ['-t', ...args], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`nginx -t: ${check.stderr}`);
  const child: ChildProcess = spawn(
    binary,
    [...args.slice(0, -1), `pid ${prefix}/nginx.pid; daemon off;`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited:\n${output}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(httpsPort, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.on('error', () => {
        resolve(false);
      });
    });
    if (open) break;
    if (Date.now() > deadline) throw new Error(`nginx did not listen:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    prefix,
    http: `http://127.0.0.1:${httpPort}`,
    https: `https://localhost:${httpsPort}`,
    certificate: readFileSync(join(prefix, 'certs/fullchain.pem'), 'utf8'),
    accessLog,
    args,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
