import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import responseValidation from '@fastify/response-validation';
import { Ajv, type Options as AjvOptions } from 'ajv';
import ajvFormats from 'ajv-formats';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import openapiGlue from 'fastify-openapi-glue';
import { parse as parseYaml } from 'yaml';
import { GLOBAL_DOMAIN, holdsRole, managesInstallation, type Principal, type Role } from '../dataprotect/principal.js';
import { BLUEMIND_TASKS_MOUNT, bluemindBinders, streamBmTaskLog } from './bluemind.js';
import type { ApiDeps } from './deps.js';
import { binders, downloadTaskFile, type Input } from './handlers.js';
import { quoteNonIntegerNumbers } from './json-numbers.js';
import { errorToProblem, problem, sendProblem } from './problem.js';
import { streamTaskEvents } from './sse.js';

/** The contract, read at run time: openapi/dataprotect.yaml, from the sources or from dist/server/http. */
export const SPEC_PATH = ['../../openapi/dataprotect.yaml', '../../../openapi/dataprotect.yaml']
  .map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
  .find((p) => existsSync(p)) ?? fileURLToPath(new URL('../../openapi/dataprotect.yaml', import.meta.url));

export interface ApiOptions {
  deps: ApiDeps;
  /** Validate every response against the contract (tests): a mismatch becomes a 500. */
  validateResponses?: boolean;
  specification?: string;
}

interface Specification {
  paths: Record<string, { servers?: { url: string }[] } & Record<string, unknown>>;
  [key: string]: unknown;
}

/**
 * The operations served under one mount. Paths without their own `servers` are under the contract's server
 * (/api/dataprotect); BlueMind's task API declares /api/tasks on its paths and is registered there.
 */
export function specificationFor(file: string, mount: string | null): Specification {
  const spec = parseYaml(readFileSync(file, 'utf8')) as Specification;
  const paths: Specification['paths'] = {};
  for (const [p, item] of Object.entries(spec.paths)) {
    const own = item.servers?.[0]?.url ?? null;
    if (own !== mount) continue;
    const { servers: _servers, ...rest } = item;
    paths[p] = rest;
  }
  return { ...spec, paths };
}

declare module 'fastify' {
  interface FastifyRequest {
    dpPrincipal: Principal | null;
  }
}

type RoleRequirement = Role | 'any';

interface OperationSchema {
  'x-dp-roles'?: RoleRequirement[];
  /** `installation`: concerns the whole installation, for the global domain's administrators only. */
  'x-dp-scope'?: 'installation';
  body?: unknown;
}

/**
 * The /api/dataprotect fastify plugin: routes bound from the contract by operationId, requests validated (400
 * naming the field), authentication through the host (401), roles from each operation's x-dp-roles and its
 * x-dp-scope (403), errors as RFC 7807 problem documents. Register it with the mount prefix: app.register(dataProtectApi, { prefix, deps }).
 */
export async function dataProtectApi(app: FastifyInstance, opts: ApiOptions): Promise<void> {
  await contractRoutes(app, opts, null);
}

/** BlueMind's task API (ITask), for the tasks BlueMind's calls hand back: register it with prefix BLUEMIND_TASKS_MOUNT. */
export async function bluemindTaskApi(app: FastifyInstance, opts: ApiOptions): Promise<void> {
  await contractRoutes(app, opts, BLUEMIND_TASKS_MOUNT);
}

async function contractRoutes(app: FastifyInstance, opts: ApiOptions, mount: string | null): Promise<void> {
  const { deps } = opts;
  const common: AjvOptions = { allErrors: true, removeAdditional: false, useDefaults: true, strict: false };
  // Bodies are JSON and must carry the right types; query, path and headers are strings and are coerced.
  const bodyAjv = new Ajv({ ...common, coerceTypes: false });
  const paramAjv = new Ajv({ ...common, coerceTypes: 'array' });
  ajvFormats.default(bodyAjv);
  ajvFormats.default(paramAjv);
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? bodyAjv : paramAjv).compile(httpPart === 'headers' ? lowerCaseHeaderNames(schema) : schema),
  );

  // Bodies are JSON only: the contract's schemas are declared for application/json, and fastify would hand any
  // other parsed type (its default text/plain parser) to the handler unvalidated. Anything else is a 415.
  app.removeContentTypeParser(['text/plain']);
  // Whole numbers only: `1e3` days is refused, not read as 1000 (json-numbers.ts).
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  // An empty body is no body (BlueMind's clients send the JSON content type on every POST): an operation that
  // needs one answers 400 in preValidation below.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) =>
    (body as string).length === 0 ? done(null, undefined) : parseJson(request, quoteNonIntegerNumbers(body as string), done),
  );

  app.decorateRequest('dpPrincipal', null);

  app.setErrorHandler((err, request, reply) => {
    const p = errorToProblem(err, request);
    // The line an "Internal error, see the log (request …)" answer points at: the request's reqId and the stack.
    if (p.status >= 500 && p.status !== 501) request.log.error({ err }, `dataprotect API error: ${p.detail ?? p.title}`);
    return sendProblem(reply, p);
  });
  app.setNotFoundHandler((request, reply) => sendProblem(reply, problem(404, `no route ${request.method} ${request.url}`)));

  app.addHook('onRequest', async (request, reply) => {
    const schema = request.routeOptions.schema as OperationSchema | undefined;
    const required = schema?.['x-dp-roles'];
    if (!required) return; // not one of ours (404 handler)
    const key = request.headers['x-bm-apikey'];
    if (typeof key !== 'string' || key.length === 0) {
      return sendProblem(reply, problem(401, 'Send your API key or session key in the X-BM-ApiKey header.'));
    }
    const principal = await deps.auth.authenticate(key);
    if (!principal) return sendProblem(reply, problem(401, 'The X-BM-ApiKey is not valid (unknown or expired).'));
    request.dpPrincipal = principal;
    if (!required.includes('any') && !required.some((r) => r !== 'any' && holdsRole(principal, r))) {
      return sendProblem(
        reply,
        problem(403, `${principal.login} lacks the role for this operation: one of ${required.join(', ')} is needed.`),
      );
    }
    if (schema['x-dp-scope'] === 'installation' && !managesInstallation(principal)) {
      return sendProblem(
        reply,
        problem(
          403,
          `${principal.login} manages ${principal.domainUid} only; this operation concerns the whole installation and ` +
            `is done by an administrator of the global domain (${GLOBAL_DOMAIN}).`,
        ),
      );
    }
  });

  // fastify validates a body only when there is one: an operation that requires one answers 400 without it,
  // before any handler reads it.
  app.addHook('preValidation', async (request, reply) => {
    const schema = request.routeOptions.schema as OperationSchema | undefined;
    if (schema?.body && (request.body === undefined || request.body === null)) {
      return sendProblem(
        reply,
        problem(400, 'This operation needs a JSON body (content-type: application/json).', {
          instance: request.url,
          errors: [{ field: 'body', message: 'is required' }],
        }),
      );
    }
  });

  if (opts.validateResponses) await app.register(responseValidation, { ajv: { plugins: [ajvFormats.default] } });

  const impl = { ...binders(deps), ...bluemindBinders(deps) } as unknown as Record<string, (i: Input<never>) => Promise<{ status: number; body: unknown }>>;
  const serviceHandlers: Record<string, (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>> = {};
  for (const [operationId, bind] of Object.entries(impl)) {
    serviceHandlers[operationId] = async (request, reply) => {
      const r = await bind({
        body: request.body as never,
        path: request.params as never,
        query: request.query as never,
        principal: request.dpPrincipal!,
        request,
        reply,
      });
      if (r.status === 204) return reply.code(204).send();
      reply.code(r.status).type('application/json');
      return r.body;
    };
  }
  serviceHandlers.downloadTaskFile = async (request, reply) =>
    downloadTaskFile(deps, request.dpPrincipal!, request.params as { taskId: string; fileName: string }, reply);
  serviceHandlers.streamTaskEvents = async (request, reply) =>
    streamTaskEvents(deps, request.dpPrincipal!, (request.params as { taskId: string }).taskId, request, reply);

  serviceHandlers.bmTaskLog = async (request, reply) =>
    streamBmTaskLog(deps, request.dpPrincipal!, (request.params as { taskId: string }).taskId, request, reply);

  await app.register(openapiGlue, { specification: specificationFor(opts.specification ?? SPEC_PATH, mount), serviceHandlers });
}

/**
 * Node hands headers over lowercased; fastify adapts a headers schema to that only for its own compiler, so with
 * ours a `Last-Event-ID` parameter would never be checked.
 */
function lowerCaseHeaderNames<S>(schema: S): S {
  const s = schema as { properties?: Record<string, unknown>; required?: string[] } | null;
  if (!s || typeof s !== 'object' || !s.properties) return schema;
  return {
    ...s,
    properties: Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k.toLowerCase(), v])),
    ...(Array.isArray(s.required) ? { required: s.required.map((r) => r.toLowerCase()) } : {}),
  } as S;
}
