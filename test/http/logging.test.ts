import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Generation } from '../../server/dataprotect/model.js';
import type { GenerationService } from '../../server/dataprotect/services.js';
import { dataProtectApi } from '../../server/http/api.js';
import { serverLogOptions } from '../../server/http/logging.js';
import { KEYS, startTestApi, type TestApi } from './harness.js';

// The server's log as an operator reads it: JSON lines, levels, no secret, and the line an "Internal error"
// answer points at. The API runs on a real PostgreSQL; the log is captured where it would go to standard output.

const SECRET_URL = 'postgres://dpowner:Pa55-w0rd-xyz@db.internal:5432/bm_dataprotect';
const lines: string[] = [];
const records = () => lines.map((l) => JSON.parse(l) as Record<string, unknown> & { level: number; msg: string; reqId?: string });

/** Generations that fail as a broken dependency would: an unexpected error whose message names a database URL. */
const failing: GenerationService = {
  list: async () => {
    throw new Error(`connection to ${SECRET_URL} lost in the middle of a query`);
  },
  get: async () => ({}) as Generation,
  forget: async () => { throw new Error('unused'); },
  sync: async () => { throw new Error('unused'); },
  protect: async () => { throw new Error('unused'); },
  unprotect: async () => { throw new Error('unused'); },
};

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi({ generations: failing, log: { write: (l: string) => void lines.push(l) } });
});
afterAll(async () => api?.close());

describe('the server log', () => {
  it('is JSON lines at info level; the API key sent never appears, in headers or anywhere else', async () => {
    const r = await api.app.inject({ method: 'GET', url: '/api/dataprotect/session', headers: { 'x-bm-apikey': KEYS.admin, authorization: 'Basic c2VjcmV0', cookie: 'sid=s3ss10n' } });
    expect(r.statusCode).toBe(200);
    const bad = await api.app.inject({ method: 'GET', url: '/api/dataprotect/session', headers: { 'x-bm-apikey': 'key-that-is-wrong-1234' } });
    expect(bad.statusCode).toBe(401);
    expect(lines.length).toBeGreaterThanOrEqual(4);
    const all = records();
    expect(all.every((x) => typeof x.level === 'number' && typeof x.time === 'number' && typeof x.msg === 'string')).toBe(true);
    expect(all.map((x) => x.level)).toContain(30);
    expect(all.some((x) => x.msg === 'incoming request' && typeof x.reqId === 'string' && /^req-[0-9a-f]{12}$/.test(x.reqId))).toBe(true);
    const text = lines.join('\n');
    for (const secret of [KEYS.admin, 'key-that-is-wrong-1234', 'c2VjcmV0', 's3ss10n']) expect(text).not.toContain(secret);
  });

  it('an internal error answers with a request id, and the log has that id with the stack, without the password', async () => {
    const r = await api.app.inject({ method: 'GET', url: '/api/dataprotect/generations/_detailed', headers: { 'x-bm-apikey': KEYS.admin } });
    expect(r.statusCode).toBe(500);
    const detail = r.json().detail as string;
    expect(detail).toMatch(/^Internal error, see the log \(request req-[0-9a-f]{12}\)$/);
    expect(r.body).not.toContain('Pa55-w0rd-xyz');
    const id = /\((?:request )(req-[0-9a-f]{12})\)/.exec(detail)![1];
    const errorLine = records().find((x) => x.reqId === id && x.level === 50);
    expect(errorLine, lines.join('\n')).toBeDefined();
    const err = errorLine!.err as { message: string; stack: string };
    expect(err.stack).toMatch(/Error: connection to postgres:\/\/dpowner:\*\*\*@db\.internal:5432\/bm_dataprotect lost/);
    expect(err.stack).toMatch(/\n\s+at /);
    expect(lines.join('\n')).not.toContain('Pa55-w0rd-xyz');
    // The same request's access lines carry the same id.
    expect(records().filter((x) => x.reqId === id).map((x) => x.msg)).toEqual(expect.arrayContaining(['incoming request', 'request completed']));
  });

  it('the BlueMind task API logs alike', async () => {
    const before = lines.length;
    const r = await api.app.inject({ method: 'GET', url: '/api/tasks/00000000-0000-4000-8000-000000000000', headers: { 'x-bm-apikey': KEYS.admin } });
    expect(r.statusCode).toBe(404);
    const mine = lines.slice(before).map((l) => JSON.parse(l) as { msg: string; req?: { url: string } });
    expect(mine.some((x) => x.req?.url === '/api/tasks/00000000-0000-4000-8000-000000000000')).toBe(true);
  });
});

describe('the log settings', () => {
  it('info by default, DP_LOG_LEVEL chooses, DP_LOG=0 silences, a wrong level is explained', () => {
    expect(serverLogOptions({}).logger).toMatchObject({ level: 'info' });
    expect(serverLogOptions({ DP_LOG_LEVEL: 'WARN' }).logger).toMatchObject({ level: 'warn' });
    expect(serverLogOptions({ DP_LOG: '0', DP_LOG_LEVEL: 'debug' }).logger).toBe(false);
    expect(() => serverLogOptions({ DP_LOG_LEVEL: 'verbose' })).toThrow(/DP_LOG_LEVEL=verbose is not a log level: use one of fatal, error, warn, info, debug, trace/);
    expect(serverLogOptions({ DP_LOG: '0' }).genReqId!({} as never)).toMatch(/^req-[0-9a-f]{12}$/);
  });

  it('at warn, the access lines are left out and errors still written', async () => {
    const quiet: string[] = [];
    const app = Fastify(serverLogOptions({ DP_LOG_LEVEL: 'warn' }, { write: (l: string) => void quiet.push(l) }));
    await app.register(dataProtectApi, { prefix: '/api/dataprotect', deps: api.deps });
    try {
      expect((await app.inject({ method: 'GET', url: '/api/dataprotect/session', headers: { 'x-bm-apikey': KEYS.admin } })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/api/dataprotect/generations/_detailed', headers: { 'x-bm-apikey': KEYS.admin } })).statusCode).toBe(500);
      const levels = quiet.map((l) => (JSON.parse(l) as { level: number }).level);
      expect(levels).toEqual([50]);
    } finally {
      await app.close();
    }
  });
});
