import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';

/** Node's HTTP parser errors (llhttp codes) as QCAT's stable codes and statuses. */
const PARSER_ERRORS: Record<string, { status: number; code: string; detail: string }> = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    code: 'HEADERS_TOO_LARGE',
    detail:
      'the request line and headers exceed the server limit (16 KB); shorten the URL or headers',
  },
  HPE_INVALID_METHOD: {
    status: 400,
    code: 'INVALID_METHOD',
    detail: 'the request method is not a valid HTTP method',
  },
  HPE_INVALID_HEADER_TOKEN: {
    status: 400,
    code: 'INVALID_HEADER',
    detail: 'a header name or value holds characters HTTP does not allow (control characters)',
  },
  HPE_UNEXPECTED_CONTENT_LENGTH: {
    status: 400,
    code: 'INVALID_CONTENT_LENGTH',
    detail: 'Content-Length and Transfer-Encoding were both sent; send one of them',
  },
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    code: 'REQUEST_TIMEOUT',
    detail: 'the request was not received in time',
  },
};

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};

/**
 * Fastify's `clientErrorHandler`: a request Node's HTTP parser refused never reaches a route, yet
 * its answer is problem+json like every other (RFC 9457), with a stable code, then the connection
 * closes (the parser cannot find where the next request would start).
 */
export function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const known = PARSER_ERRORS[error.code ?? ''];
  const { status, code, detail } = known ?? {
    status: 400,
    code: 'BAD_REQUEST',
    detail: `the request is not valid HTTP (${error.code ?? 'parse error'})`,
  };
  const requestId = randomUUID();
  const body = JSON.stringify({
    type: `urn:qcat:problem:${code.toLowerCase()}`,
    title: TITLES[status] ?? 'Bad Request',
    status,
    code,
    detail,
    instance: `urn:uuid:${requestId}`,
    requestId,
  });
  socket.end(
    `HTTP/1.1 ${status.toString()} ${TITLES[status] ?? 'Bad Request'}\r\n` +
      'Connection: close\r\n' +
      'X-Content-Type-Options: nosniff\r\n' +
      'Content-Type: application/problem+json\r\n' +
      `Content-Length: ${Buffer.byteLength(body).toString()}\r\n` +
      `X-Request-Id: ${requestId}\r\n\r\n${body}`,
  );
}
