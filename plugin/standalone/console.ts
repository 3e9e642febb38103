import 'reflect-metadata';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { serverLogOptions, type LogDestination } from '../../server/http/logging.js';
import { errorToProblem, problem, sendProblem } from '../../server/http/problem.js';
import { registerServer, type ServerRegistration, type ServerServices } from '../server.js';
import { StandaloneAuth, type AdminAccount, type ExtraAccount } from './auth.js';
import { SignInLimiter } from './sign-in-limit.js';

// The reference console `npm start` serves: the console shell (built by Vite into dist/console), a sign-in for
// the administrator, and the plugin registered as a BlueMind host would register it.

export interface ConsoleOptions {
  port?: number;
  host?: string;
  databaseUrl: string;
  /** ./var: the repository and the console's generated credentials live here. */
  varDir: string;
  account: AdminAccount;
  /** More accounts with fewer roles (tests, demonstrations). */
  extraAccounts?: ExtraAccount[];
  staticDir?: string;
  /** The server's log (server/http/logging.ts): DP_LOG and DP_LOG_LEVEL from this environment; none when absent. */
  log?: { env: NodeJS.ProcessEnv; stream?: LogDestination };
  services?: ServerServices;
  /** Failed sign-ins allowed per address and per login within a minute (default 5). */
  signInFailuresPerMinute?: number;
}

export interface RunningConsole {
  url: string;
  app: FastifyInstance;
  plugin: ServerRegistration;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.map': 'application/json',
  '.ico': 'image/x-icon',
};

/** dist/console from the sources (plugin/standalone) or from the build (dist/plugin/standalone). */
export function defaultStaticDir(): string {
  const candidates = ['../../dist/console', '../../console'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  return candidates.find((d) => existsSync(path.join(d, 'index.html'))) ?? candidates[0];
}

export async function startConsole(o: ConsoleOptions): Promise<RunningConsole> {
  // forceCloseConnections: a browser's open event stream never keeps the server from stopping.
  const app = Fastify({
    ...serverLogOptions(o.log?.env ?? { DP_LOG: '0' }, o.log?.stream),
    bodyLimit: 1024 * 1024,
    forceCloseConnections: true,
  });
  // Outside the API too (sign-in, the console's files), a failure is a problem document quoting the request id.
  app.setErrorHandler((err, request, reply) => {
    const p = errorToProblem(err, request);
    if (p.status >= 500) request.log.error({ err }, `console error: ${p.detail ?? p.title}`);
    return sendProblem(reply, p);
  });
  const auth = new StandaloneAuth(o.account, o.extraAccounts);

  const plugin = await registerServer(
    {
      fastify: app,
      databaseUrl: o.databaseUrl,
      auth,
      defaultRepositoryLocation: path.resolve(o.varDir, 'repository'),
      taskFilesDir: path.resolve(o.varDir, 'task-files'),
    },
    o.services,
  );

  const limiter = new SignInLimiter(o.signInFailuresPerMinute ?? 5, 60_000);
  // Sign-in: the console's own, not part of /api/dataprotect (in BlueMind the core does this).
  app.post('/auth/login', async (request, reply) => {
    const body = request.body as { login?: unknown; password?: unknown } | undefined;
    if (typeof body?.login !== 'string' || typeof body?.password !== 'string') {
      return sendProblem(reply, problem(400, 'Send {"login": "...", "password": "..."}.'));
    }
    const wait = limiter.retryAfter(request.ip, body.login);
    if (wait > 0) {
      reply.header('retry-after', String(wait));
      return sendProblem(reply, problem(429, `Too many failed sign-ins: try again in ${wait} s.`, { title: 'Too Many Requests' }));
    }
    const key = auth.signIn(body.login, body.password);
    if (!key) {
      limiter.failed(request.ip, body.login);
      return sendProblem(reply, problem(401, 'Wrong login or password.'));
    }
    limiter.succeeded(body.login);
    return { sessionKey: key };
  });
  app.post('/auth/logout', async (request, reply) => {
    const key = request.headers['x-bm-apikey'];
    if (typeof key === 'string') auth.signOut(key);
    return reply.code(204).send();
  });

  const staticDir = path.resolve(o.staticDir ?? defaultStaticDir());
  app.get('/*', async (request, reply) => {
    const rel = decodeURIComponent((request.params as { '*': string })['*'] ?? '');
    // An unknown API path is an API 404, not the console page.
    if (/^(api|auth)(\/|$)/.test(rel)) return sendProblem(reply, problem(404, `no route ${request.method} ${request.url}`));
    let file = path.resolve(staticDir, rel);
    if (!file.startsWith(staticDir + path.sep) && file !== staticDir) return sendProblem(reply, problem(404, 'not found'));
    if (!existsSync(file) || statSync(file).isDirectory()) file = path.join(staticDir, 'index.html');
    if (!existsSync(file)) {
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send(`The console is not built: run \`npm run build:ui\` (expected ${staticDir}/index.html).`);
    }
    const ext = path.extname(file);
    reply.header('cache-control', ext === '.html' ? 'no-cache' : 'public, max-age=3600');
    return reply.type(TYPES[ext] ?? 'application/octet-stream').send(readFileSync(file));
  });

  const address = await app.listen({ port: o.port ?? 8080, host: o.host ?? '127.0.0.1' });
  return {
    url: address,
    app,
    plugin,
    async close() {
      await app.close();
      await plugin.close();
    },
  };
}
