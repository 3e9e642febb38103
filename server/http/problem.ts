import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import {
  CapabilityUnavailableError,
  ConflictError,
  ForbiddenError,
  InvalidInputError,
  NotFoundError,
} from '../dataprotect/errors.js';
import { explainError } from '../jobs/explain-error.js';

// RFC 7807 problem documents: every error the API answers has this shape.

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  capability?: string;
  taskId?: string;
  errors?: { field: string; message: string }[];
}

// A URN, not an invented web address: problem kinds are identified, not documented at a URL.
const TYPE_BASE = 'urn:bm-dataprotect:problem:';

const TITLES: Record<number, [string, string]> = {
  400: ['invalid-request', 'Invalid request'],
  401: ['unauthenticated', 'Authentication required'],
  403: ['forbidden', 'Forbidden'],
  404: ['not-found', 'Not found'],
  405: ['method-not-allowed', 'Method not allowed'],
  409: ['conflict', 'Conflict'],
  413: ['payload-too-large', 'Request too large'],
  415: ['unsupported-media-type', 'Unsupported media type'],
  500: ['internal-error', 'Internal error'],
  501: ['not-implemented', 'Not available in this build'],
  503: ['unavailable', 'Unavailable for now'],
};

export function problem(status: number, detail: string, extra: Partial<Problem> = {}): Problem {
  const [slug, title] = TITLES[status] ?? ['error', 'Error'];
  return { type: TYPE_BASE + slug, title, status, detail, ...extra };
}

export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  return reply.code(p.status).type('application/problem+json').send(p);
}

interface AjvLikeError {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** `body.retentionDays`, `query.limit`, `path.taskId`: where a validation error is, in words a caller can act on. */
export function validationErrors(err: FastifyError): { field: string; message: string }[] {
  const part = ({ body: 'body', querystring: 'query', params: 'path', headers: 'header' } as Record<string, string>)[
    err.validationContext ?? ''
  ] ?? String(err.validationContext ?? 'request');
  return ((err.validation ?? []) as AjvLikeError[]).map((v) => {
    const segments = (v.instancePath ?? '').split('/').filter(Boolean).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    let message = v.message ?? 'is invalid';
    if (v.keyword === 'required' && typeof v.params?.missingProperty === 'string') {
      segments.push(v.params.missingProperty);
      message = 'is required';
    } else if (v.keyword === 'additionalProperties' && typeof v.params?.additionalProperty === 'string') {
      segments.push(v.params.additionalProperty);
      message = 'is not allowed';
    } else if (v.keyword === 'type' && v.params?.type === 'integer') {
      message = 'must be a whole number written in digits (not 1e3 or 7.0)';
    } else if (v.keyword === 'enum' && Array.isArray(v.params?.allowedValues)) {
      message = `must be one of ${(v.params.allowedValues as unknown[]).map(String).join(', ')}`;
    }
    return { field: [part, ...segments].join('.'), message };
  });
}

/** A problem a binder answers as it is (an HTTP-layer answer the domain's errors do not name). */
export class ProblemError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail ?? problem.title);
    this.name = 'ProblemError';
  }
}

/** Maps thrown errors (validation, domain, fastify, unexpected) to problem documents. */
export function errorToProblem(err: unknown, request: FastifyRequest): Problem {
  const instance = request.url;
  if (err instanceof ProblemError) return { instance, ...err.problem };
  if (err instanceof CapabilityUnavailableError) {
    return problem(501, err.message, { capability: err.capability, instance });
  }
  if (err instanceof NotFoundError) return problem(404, err.message, { instance });
  if (err instanceof ForbiddenError) return problem(403, err.message, { instance });
  if (err instanceof ConflictError) return problem(409, err.message, { instance, ...(err.taskId ? { taskId: err.taskId } : {}) });
  if (err instanceof InvalidInputError) {
    return problem(400, err.message, { instance, errors: [{ field: `body.${err.field}`, message: err.message.slice(err.field.length + 2) }] });
  }
  const fe = err as FastifyError;
  // Request validation only: a failed response validation (tests) also carries `validation`, but no context.
  if (fe && Array.isArray(fe.validation) && fe.validationContext) {
    const errors = validationErrors(fe);
    const detail = errors.map((e) => `${e.field} ${e.message}`).join('; ');
    return problem(400, detail || fe.message, { instance, errors });
  }
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) return problem(status, fe.message, { instance });
  // Something the request needs is away (the repository's share, the mail server, PostgreSQL): said with what
  // to do, not as the server's own failure.
  const explained = explainError(err);
  if (explained) return problem(503, explained.message, { instance });
  return internalError(request);
}

/** The answer to a failure of the server itself: it quotes the request id that its log line carries. */
export function internalError(request: FastifyRequest): Problem {
  return problem(500, `Internal error, see the log (request ${request.id})`, { instance: request.url });
}
