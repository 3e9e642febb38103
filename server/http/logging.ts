import { randomBytes } from 'node:crypto';
import type { FastifyServerOptions } from 'fastify';
import { redactUrlPasswords } from '../pg/redact.js';

// The server's log: fastify's pino, JSON lines on standard output, secrets redacted. Each request has an id
// (`req-…`, the log's `reqId`) that an "Internal error" answer quotes, so that its log line is found.

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
type Level = (typeof LEVELS)[number];

/** Where a secret can sit in what is logged: request and response headers, and fields named as secrets. */
export const REDACTED_PATHS = [
  'req.headers["x-bm-apikey"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers["x-bm-apikey"]',
  'headers.authorization',
  'headers.cookie',
  'password',
  '*.password',
  'apiKey',
  '*.apiKey',
  'sessionKey',
  '*.sessionKey',
];

// fastify-openapi-glue warns at each start that the contract's response media types (problem+json, event
// streams, downloads) have no request body parser; none is needed, and adding one would accept such bodies.
const SPURIOUS = /^ContentTypeParser for '[^']*' not found$/;

/** `req-` and twelve hex digits: unique enough to find one request in a day of logs. */
export function newRequestId(): string {
  return `req-${randomBytes(6).toString('hex')}`;
}

function serializeError(err: unknown): { type: string; message: string; stack: string; [key: string]: unknown } {
  if (!(err instanceof Error)) return { type: typeof err, message: redactUrlPasswords(String(err)), stack: '' };
  const e = err as Error & { code?: unknown; statusCode?: unknown; cause?: unknown };
  return {
    type: e.name,
    message: redactUrlPasswords(e.message),
    stack: redactUrlPasswords(e.stack ?? ''),
    ...(e.code !== undefined ? { code: e.code } : {}),
    ...(e.statusCode !== undefined ? { statusCode: e.statusCode } : {}),
    ...(e.cause !== undefined ? { cause: serializeError(e.cause) } : {}),
  };
}

export interface LogDestination {
  write(line: string): void;
}

/**
 * fastify's logging options from the environment: on at `info` unless DP_LOG=0, the level from DP_LOG_LEVEL
 * (fatal, error, warn, info, debug, trace); a destination other than standard output for tests.
 */
export function serverLogOptions(env: NodeJS.ProcessEnv = process.env, stream?: LogDestination): Pick<FastifyServerOptions, 'logger' | 'genReqId'> {
  const genReqId = () => newRequestId();
  if (env.DP_LOG === '0') return { logger: false, genReqId };
  const raw = (env.DP_LOG_LEVEL ?? '').trim().toLowerCase();
  if (raw !== '' && !LEVELS.includes(raw as Level)) {
    throw new Error(`DP_LOG_LEVEL=${env.DP_LOG_LEVEL} is not a log level: use one of ${LEVELS.join(', ')} (or DP_LOG=0 for no log)`);
  }
  return {
    genReqId,
    logger: {
      level: (raw || 'info') as Level,
      redact: { paths: REDACTED_PATHS, censor: '***' },
      serializers: {
        err: serializeError,
        req: (req: { method?: string; url?: string; hostname?: string; ip?: string }) => ({
          method: req.method,
          url: redactUrlPasswords(req.url ?? ''),
          host: req.hostname,
          remoteAddress: req.ip,
        }),
      },
      hooks: {
        // Messages are text: a URL with its password in one (a database's, a relay's) loses the password.
        logMethod(args, method) {
          if (args.some((a) => typeof a === 'string' && SPURIOUS.test(a))) return;
          method.apply(this, args.map((a) => (typeof a === 'string' ? redactUrlPasswords(a) : a)) as Parameters<typeof method>);
        },
      },
      ...(stream ? { stream } : {}),
    },
  };
}
