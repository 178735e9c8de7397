import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isUnavailable } from '../core/adapters/unavailable.js';
import { ConcurrencyConflictError, QcatError, ValidationError } from '../core/errors.js';

/** What a client is told to wait when a dependency is down: about how long a restart takes. */
const RETRY_AFTER_SECONDS = 2;

/** RFC 9457 problem details, with QCAT's stable `code` and the request id from the log line. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  instance: string;
  requestId: string;
  /** Every failing field, for validation errors. */
  errors?: { path: string; message: string }[];
  /** For a refused transition: the state it is in and what it allows. */
  currentState?: string;
  allowedCommands?: string[];
  /** For REQUEST_ALREADY_OPEN: the approval request that is still open. */
  openRequestId?: string;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** Domain codes whose HTTP status is not the default for their kind. */
const STATUS_BY_CODE: Record<string, number> = {
  CONCURRENCY_CONFLICT: 409,
  IDEMPOTENCY_KEY_REUSED: 422,
  IDEMPOTENCY_IN_PROGRESS: 409,
  EVENT_TOO_LARGE: 413,
  APPEND_TOO_LARGE: 413,
  API_KEY_NOT_FOUND: 404,
  UNKNOWN_PROJECTION: 404,
  STRATEGY_NOT_FOUND: 404,
  APPROVAL_NOT_FOUND: 404,
  STRATEGY_EXISTS: 409,
  STRATEGY_TRANSITION_NOT_ALLOWED: 409,
  REQUEST_ALREADY_OPEN: 409,
  APPROVAL_NOT_PENDING: 409,
  APPROVAL_EXPIRED: 409,
  ALREADY_APPROVED: 409,
  SELF_APPROVAL_FORBIDDEN: 403,
  SELF_REJECTION_FORBIDDEN: 403,
  APPROVER_ROLE_NOT_ELIGIBLE: 403,
  APPROVAL_NEEDS_ROLE: 403,
  NOT_REQUESTER: 403,
  BACKTEST_EXISTS: 409,
  BACKTEST_NOT_PENDING: 409,
  // Optimization (core/optimization, docs/optimization.md).
  OPTIMIZATION_NOT_FOUND: 404,
  OPTIMIZATION_EXISTS: 409,
  OPTIMIZATION_FINISHED: 409,
  OPTIMIZATION_BATCH_OUT_OF_ORDER: 409,
  STANDING_APPROVAL_NOT_FOUND: 404,
  STANDING_APPROVAL_EXISTS: 409,
  STANDING_APPROVAL_ENDED: 409,
  // Risk (core/risk, docs/risk.md).
  PORTFOLIO_NOT_FOUND: 404,
  BOOK_NOT_FOUND: 404,
  LIMITS_ALREADY_SET: 409,
  RESET_REQUIRES_APPROVAL: 409,
  KILL_SWITCH_ALREADY_ENGAGED: 409,
  KILL_SWITCH_NOT_ENGAGED: 409,
  NOTHING_TO_RESET: 409,
  NO_OPEN_POSITION: 409,
  RISK_ROLE_REQUIRED: 403,
  UNKNOWN_CAPABILITY: 404,
  RANKING_NOT_NEWER: 409,
  NO_SYMBOLS: 409,
  PREREQUISITE_OFF: 409,
  CAPABILITY_REQUIRED: 409,
  INVALID_THRESHOLD: 400,
  APPROVAL_INCOMPLETE: 403,
  INVALID_SCOPE: 400,
  INVALID_RESET: 400,
  INVALID_EXIT_LEVEL: 400,
  REASON_REQUIRED: 400,
  // Portfolio allocations (core/portfolio, docs/portfolio.md).
  STRATEGY_NOT_IN_PORTFOLIO: 400,
  ALLOCATION_PROPOSAL_PENDING: 409,
  NO_VALUATION: 409,
  // Hot symbols and their market data (core/hot-symbols, docs/hot-symbols.md).
  RECOMMENDATION_EXPIRED: 409,
  HOT_SYMBOL_PROPOSAL_PENDING: 409,
  HOT_SYMBOL_NOT_PENDING: 409,
  HOT_SYMBOL_ROLE_REQUIRED: 403,
  INVALID_DERIVATIVES_CSV: 400,
};

/** Details of a domain error that a client may act on, sent as problem extension members. */
const EXTENSION_MEMBERS = ['currentState', 'allowedCommands', 'openRequestId', 'errors'] as const;

/** Fastify's own error codes, as QCAT's stable ones. */
const FRAMEWORK_CODES: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'EMPTY_BODY',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_CONTENT_LENGTH',
  FST_ERR_MAX_PARAM_LENGTH: 'URL_TOO_LONG',
  FST_ERR_BAD_URL: 'BAD_URL',
};

export class HttpProblem extends QcatError {
  constructor(
    readonly status: number,
    code: string,
    detail: string,
  ) {
    super(code, detail);
  }
}

export function sendProblem(
  request: FastifyRequest,
  reply: FastifyReply,
  problem: Omit<Problem, 'type' | 'title' | 'instance' | 'requestId'>,
): FastifyReply {
  const body: Problem = {
    type: `urn:qcat:problem:${problem.code.toLowerCase()}`,
    title: TITLES[problem.status] ?? 'Error',
    instance: request.url,
    requestId: request.id,
    ...problem,
  };
  // Its own serializer: a route's response schema for the same status (a 202, say) describes the
  // success, and would refuse a problem as FST_ERR_RESPONSE_SERIALIZATION (a 500).
  return reply
    .code(problem.status)
    .type('application/problem+json')
    .serializer(JSON.stringify)
    .send(body);
}

const fastifyValidation = (error: FastifyError): { path: string; message: string }[] =>
  (error.validation ?? []).map((issue) => {
    const where = error.validationContext ?? 'request';
    const path = issue.instancePath.replace(/^\//, '').replaceAll('/', '.');
    return { path: path ? `${where}.${path}` : where, message: issue.message ?? 'is invalid' };
  });

/**
 * The one error handler: every failure becomes problem+json with a stable code. 5xx answers name
 * nothing internal, only the request id under which the log has the details.
 */
export function handleError(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  if ('validation' in error && error.validation) {
    const errors = fastifyValidation(error);
    return sendProblem(request, reply, {
      status: 400,
      code: 'VALIDATION_FAILED',
      detail: `the request is invalid: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
      errors,
    });
  }
  if (error instanceof HttpProblem) {
    return sendProblem(request, reply, {
      status: error.status,
      code: error.code,
      detail: error.message,
    });
  }
  if (error instanceof QcatError) {
    const status =
      STATUS_BY_CODE[error.code] ??
      (error instanceof ConcurrencyConflictError
        ? 409
        : error instanceof ValidationError
          ? 400
          : 422);
    const extensions = Object.fromEntries(
      EXTENSION_MEMBERS.filter((key) => error.details[key] !== undefined).map((key) => [
        key,
        error.details[key],
      ]),
    );
    return sendProblem(request, reply, {
      status,
      code: error.code,
      detail: error.message,
      ...extensions,
    });
  }
  const statusCode =
    'statusCode' in error && typeof error.statusCode === 'number' ? error.statusCode : 500;
  if (statusCode >= 400 && statusCode < 500) {
    const fastifyCode = 'code' in error && typeof error.code === 'string' ? error.code : '';
    const code =
      FRAMEWORK_CODES[fastifyCode] ?? (fastifyCode.replace(/^FST_ERR_/, '') || 'BAD_REQUEST');
    return sendProblem(request, reply, { status: statusCode, code, detail: error.message });
  }
  if (isUnavailable(error)) {
    // Nothing wrong with the request: a dependency does not answer (PostgreSQL down, say).
    request.log.warn({ err: error }, 'request failed: a dependency is unavailable');
    return sendProblem(request, reply.header('retry-after', String(RETRY_AFTER_SECONDS)), {
      status: 503,
      code: 'UNAVAILABLE',
      detail: `a service QCAT depends on does not answer; retry in ${RETRY_AFTER_SECONDS} s`,
    });
  }
  request.log.error({ err: error }, 'request failed');
  return sendProblem(request, reply, {
    status: statusCode >= 500 && statusCode < 600 ? statusCode : 500,
    code: 'INTERNAL_ERROR',
    detail: `something went wrong on our side; quote request id ${request.id} when you report it`,
  });
}
