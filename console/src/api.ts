/**
 * Calls to QCAT's HTTP API with the signed-in key. Every refusal becomes an ApiError whose
 * `message` is written for a person, from the server's problem+json (RFC 9457).
 */

export interface Problem {
  status: number;
  code: string;
  detail: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Called when the server no longer accepts the key (revoked while the page is open). */
let onKeyRefused: (error: ApiError) => void = () => undefined;
export const whenKeyRefused = (handler: (error: ApiError) => void): void => {
  onKeyRefused = handler;
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const text = (value: unknown, fallback: string): string =>
  typeof value === 'string' && value !== '' ? value : fallback;

/** A problem+json answer in words a person understands. */
export function explain(status: number, body: unknown): ApiError {
  const problem = isRecord(body) ? body : {};
  const code = text(problem['code'], `HTTP_${status}`);
  const detail = text(problem['detail'], text(problem['title'], `HTTP ${status}`));
  const lead: Record<number, string> = {
    400: 'QCAT could not accept this input',
    401: 'Your API key is not accepted (unknown, revoked or rotated); sign in again',
    403: 'Your role may not do this',
    404: 'Not found',
    409: 'This conflicts with the current state',
    412: 'Someone changed this in the meantime; reload and try again',
    422: 'QCAT refused this',
    429: 'Too many requests; wait a moment',
    503: 'QCAT or one of its dependencies is unavailable right now; try again shortly',
  };
  const first = lead[status] ?? (status >= 500 ? 'QCAT failed to answer' : 'Refused');
  return new ApiError(status, code, `${first}: ${detail} (${code})`);
}

export interface CallOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  body?: unknown;
  /** Overrides the signed-in key (sign-in checks a key before keeping it). */
  token?: string;
  /** One key per submission (a form's): a repeated send of it runs the command once. */
  idempotencyKey?: string;
}

let currentToken = '';
export const useToken = (token: string): void => {
  currentToken = token;
};

/** One API call; resolves to the parsed JSON answer, rejects with an ApiError. */
export async function call(path: string, options: CallOptions = {}): Promise<unknown> {
  const token = options.token ?? currentToken;
  const method = options.method ?? 'GET';
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (method !== 'GET') {
    headers['content-type'] = 'application/json';
    // A double click or a retry after a lost answer runs the command once (ADR 018).
    headers['idempotency-key'] = options.idempotencyKey ?? crypto.randomUUID();
  }
  let response: Response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      ...(method === 'GET' ? {} : { body: JSON.stringify(options.body ?? {}) }),
    });
  } catch {
    throw new ApiError(
      0,
      'UNREACHABLE',
      'QCAT does not answer: the server is away or the network is down',
    );
  }
  const body: unknown = await response.json().catch(() => null);
  if (response.ok) return body;
  const error = explain(response.status, body);
  if (response.status === 401 && options.token === undefined) onKeyRefused(error);
  throw error;
}

/** GET helper: the answer narrowed by the page that asked (the server's schema is the contract). */
export const get = async <T>(path: string): Promise<T> => (await call(path)) as T;

/** A query string from the defined values. */
export function query(values: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(values))
    if (value !== undefined && value !== '') params.set(name, String(value));
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}
