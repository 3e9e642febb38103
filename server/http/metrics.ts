// GET /metrics for Prometheus: on the host's server, with the API's authentication (X-BM-ApiKey of an
// administrator holding manageDataProtect), and, when DP_METRICS_LISTEN names an address, also on a listener of
// its own without a key, for a scraper on a management network that cannot hold an administrator's key.

import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { HostAuthenticator } from '../dataprotect/auth.js';
import type { DataProtectMetrics } from '../dataprotect/metrics.js';
import { holdsRole } from '../dataprotect/principal.js';
import { problem, sendProblem } from './problem.js';

export interface MetricsOptions {
  auth: HostAuthenticator;
  metrics: DataProtectMetrics;
  /** `HOST:PORT` (or `PORT`) for the separate listener; none when empty. */
  listen?: string;
  /** Where the route goes on the host's server. */
  path?: string;
}

export interface MetricsEndpoint {
  /** The separate listener's address, when there is one. */
  address: string | null;
  close(): Promise<void>;
}

async function serve(metrics: DataProtectMetrics, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  try {
    const m = await metrics.render();
    return reply.code(200).type(m.contentType).send(m.body);
  } catch (err) {
    request.log.error({ err }, 'computing the metrics');
    return sendProblem(reply, problem(500, `the metrics could not be computed: ${(err as Error).message}`));
  }
}

/** `HOST:PORT`, `[v6]:PORT` or `PORT` (then on 127.0.0.1). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value) ?? /^()()(\d+)$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`DP_METRICS_LISTEN=${value}: expected HOST:PORT or PORT`);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

export async function registerMetrics(app: FastifyInstance, o: MetricsOptions): Promise<MetricsEndpoint> {
  app.get(o.path ?? '/metrics', async (request, reply) => {
    const key = request.headers['x-bm-apikey'];
    if (typeof key !== 'string' || key.length === 0) return sendProblem(reply, problem(401, 'Send the API key of an administrator in the X-BM-ApiKey header.'));
    const principal = await o.auth.authenticate(key);
    if (!principal) return sendProblem(reply, problem(401, 'The X-BM-ApiKey is not valid (unknown or expired).'));
    if (!holdsRole(principal, 'manageDataProtect')) return sendProblem(reply, problem(403, `${principal.login} lacks the role for the metrics: manageDataProtect is needed.`));
    return serve(o.metrics, request, reply);
  });
  if (!o.listen) return { address: null, close: async () => {} };
  const { host, port } = parseListen(o.listen);
  const own = Fastify({ logger: false });
  own.get('/metrics', (request, reply) => serve(o.metrics, request, reply));
  const address = await own.listen({ host, port });
  return { address, close: () => own.close() };
}
