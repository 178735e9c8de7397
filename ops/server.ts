import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { openRuntime, type Logger, type Runtime } from './runtime.js';
import { ApiKeyService } from '../api/auth/api-key-service.js';
import { app } from '../api/app.js';
import { answerClientError } from '../api/client-errors.js';
import { closeUnusedSocketsOnClose } from '../api/unused-sockets.js';
import { toError } from '../core/errors.js';
import { withAdvisoryLock } from '../core/adapters/postgres/pool.js';
import { expireDueApprovals } from '../automation/approval-flow/expiry.js';
import { handleError } from '../api/problem.js';
import { PaperTrading } from './paper-trading.js';

export interface RunningServer {
  fastify: FastifyInstance;
  runtime: Runtime;
  url: string;
  /** The admin key made on the very first start of an empty store, if this start made it. */
  bootstrapToken: string | undefined;
  /** The feed and paper engines (PAPER_TRADING=on). */
  paperTrading: PaperTrading | undefined;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** Where the first-start admin key is shown (once); default stdout. */
  announce?: (line: string) => void;
}

/** Structured JSON logs; human-readable only when a person is watching a terminal. */
const logger = (config: Config) =>
  process.stdout.isTTY
    ? {
        level: config.LOG_LEVEL,
        transport: { target: 'pino-pretty', options: { translateTime: 'SYS:standard' } },
      }
    : { level: config.LOG_LEVEL };

/** Starts QCAT: infrastructure, projections, then HTTP; `stop()` undoes them in reverse. */
export async function startServer(
  config: Config,
  options: ServerOptions = {},
): Promise<RunningServer> {
  const fastify = httpServer(config);
  const log = {
    info: (message: string) => {
      fastify.log.info(message);
    },
    warn: (message: string) => {
      fastify.log.warn(message);
    },
  };
  const runtime = await openRuntime(config, log);
  let expiry: NodeJS.Timeout | undefined;
  let paperTrading: PaperTrading | undefined;
  try {
    const bootstrapToken = await bootstrapAdminKey(runtime, options.announce);
    await runtime.projections.start();
    await runtime.automation.start();
    expiry = expireApprovalsEveryMinute(runtime, log);
    paperTrading = paperTradingFor(config, runtime, log);
    await paperTrading?.start();
    await fastify.register(app, { runtime });
    const url = await fastify.listen({ port: config.PORT, host: config.HOST });
    return {
      fastify,
      runtime,
      url,
      bootstrapToken,
      paperTrading,
      // Stop accepting, drain HTTP and WebSockets, then the engines, projections and pools.
      stop: async () => {
        clearInterval(expiry);
        await fastify.close();
        await paperTrading?.stop();
        await runtime.close();
      },
    };
  } catch (error) {
    clearInterval(expiry);
    await paperTrading?.stop();
    await fastify.close();
    await runtime.close();
    throw error;
  }
}

/** The HTTP server: request ids, the proxies trusted, problem+json for what fails before a route. */
function httpServer(config: Config): FastifyInstance {
  const fastify = Fastify({
    logger: logger(config),
    bodyLimit: config.BODY_LIMIT_BYTES,
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
    },
    requestIdHeader: false,
    // The client address behind the proxies named in TRUST_PROXY; none trusted by default.
    trustProxy: config.TRUST_PROXY.length > 0 ? config.TRUST_PROXY : false,
    return503OnClosing: true,
    // Errors the router raises before any route runs (bad or overlong URLs): problem+json too.
    frameworkErrors: (error, request, reply) => {
      handleError(error, request, reply);
    },
    forceCloseConnections: 'idle',
    // What Node's HTTP parser refuses (overlong URL, bad method or header): problem+json as well.
    clientErrorHandler: answerClientError,
  });
  closeUnusedSocketsOnClose(fastify.server);
  fastify.addHook('onSend', (request, reply, payload, done) => {
    void reply.header('x-request-id', request.id);
    done(null, payload);
  });
  return fastify;
}

/** The feed and paper engines when PAPER_TRADING=on, their ticks reported as metrics; not started. */
function paperTradingFor(config: Config, runtime: Runtime, log: Logger): PaperTrading | undefined {
  if (config.PAPER_TRADING !== 'on') return undefined;
  return new PaperTrading({
    config,
    pool: runtime.pool,
    connectionString: runtime.databaseUrl,
    eventStore: runtime.eventStore,
    log,
    onTick: (portfolio, timeframe, cursor) => {
      runtime.metrics.engineLastTick.set({ portfolio, timeframe }, Date.now() / 1000);
      if (cursor > 0) runtime.metrics.engineBarOpen.set({ portfolio, timeframe }, cursor / 1000);
    },
    onDropped: (portfolio) => {
      const labels = { portfolio, timeframe: portfolio.replace(/^paper-/, '') };
      runtime.metrics.engineLastTick.remove(labels);
      runtime.metrics.engineBarOpen.remove(labels);
    },
  });
}

/** Approval requests past their expiry are expired (every process may; expiring is idempotent). */
function expireApprovalsEveryMinute(
  runtime: Runtime,
  log: { warn(message: string): void },
): NodeJS.Timeout {
  const timer = setInterval(() => {
    expireDueApprovals(runtime.pool, runtime.commands, new Date()).catch((error: unknown) => {
      log.warn(`approvals: expiring due requests failed: ${toError(error).message}`);
    });
  }, 60_000);
  timer.unref();
  return timer;
}

const BOOTSTRAP_LOCK = 'qcat.bootstrap-admin';

/**
 * No default credentials: on the very first start of an empty log, one admin key is issued and
 * its token shown once. From then on keys come from `qcat keys create` or the API.
 */
async function bootstrapAdminKey(
  runtime: Runtime,
  announce = (line: string) => {
    console.log(line);
  },
): Promise<string | undefined> {
  if ((await runtime.eventStore.headPosition()) !== 0n) return undefined;
  // Two processes starting on one empty store: the lock lets one of them issue the key; the
  // other then finds the log no longer empty.
  const issued = await withAdvisoryLock(runtime.pool, BOOTSTRAP_LOCK, async () =>
    (await runtime.eventStore.headPosition()) !== 0n
      ? undefined
      : new ApiKeyService(runtime.commands).issue('bootstrap-admin', 'admin', 'qcat-bootstrap'),
  );
  if (issued === undefined) return undefined;
  const file = runtime.config.QCAT_BOOTSTRAP_TOKEN_FILE;
  if (file !== undefined) {
    // 'wx': never overwrite a token file an operator has not collected yet.
    await writeFile(file, `${issued.token}\n`, { mode: 0o600, flag: 'wx' });
    announce(
      `First start of an empty store: created admin API key ${issued.keyId}. Its token is in ${file} (readable by this user and root only); delete the file once you have it.`,
    );
    return issued.token;
  }
  announce(
    `First start of an empty store: created admin API key ${issued.keyId}. Token (shown only now): ${issued.token}`,
  );
  return issued.token;
}
