import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import ajvFormats from 'ajv-formats';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SPEC_PATH } from '../../server/http/api.js';
import { KEYS, PRINCIPALS, startTestApi, type TestApi } from './harness.js';

// Malformed requests to every operation of the contract, as an authorised administrator: missing and wrong-typed
// bodies, huge numbers, NUL bytes, unicode, bad ids, wrong content types. Every answer must be one the contract
// documents for that operation, shaped as documented; a 5xx other than a documented 501 fails.

const SEED = 20_261_105;
const RUNS_PER_OPERATION = 16;

type Json = Record<string, unknown>;
const spec = parse(readFileSync(SPEC_PATH, 'utf8')) as Json;

/** The spec with every local $ref replaced by what it points at (no recursion in this contract). */
function deref(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(deref);
  if (!node || typeof node !== 'object') return node;
  const o = node as Json;
  if (typeof o.$ref === 'string') {
    const target = o.$ref.slice(2).split('/').reduce<unknown>((n, k) => (n as Json)[k.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
    const { $ref: _, ...rest } = o;
    return { ...(deref(target) as Json), ...(deref(rest) as Json) };
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, deref(v)]));
}

interface Param {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: Json;
}
interface Operation {
  id: string;
  method: string;
  /** Where the path is served: the contract's server, or the path's own (BlueMind's task API). */
  mount: string;
  path: string;
  params: Param[];
  body: Json | null;
  responses: Record<string, { content?: Record<string, { schema: Json }> }>;
}

const operations: Operation[] = Object.entries((spec.paths as Json) ?? {}).flatMap(([p, rawItem]) => {
  const item = deref(rawItem) as Json;
  const shared = (item.parameters as Param[] | undefined) ?? [];
  return ['get', 'put', 'post', 'delete', 'patch']
    .filter((m) => item[m])
    .map((m) => {
      const op = item[m] as Json;
      const body = (op.requestBody as { content: Record<string, { schema: Json }> } | undefined)?.content['application/json'].schema ?? null;
      return {
        id: op.operationId as string,
        method: m.toUpperCase(),
        mount: (item.servers as { url: string }[] | undefined)?.[0]?.url ?? '/api/dataprotect',
        path: p,
        params: [...shared, ...((op.parameters as Param[] | undefined) ?? [])],
        body,
        responses: op.responses as Operation['responses'],
      };
    });
});

const ajv = new Ajv({ strict: false, allErrors: true });
ajvFormats.default(ajv);
const validators = new Map<object, ValidateFunction>();
function validatorOf(schema: Json): ValidateFunction {
  let v = validators.get(schema);
  if (!v) validators.set(schema, (v = ajv.compile(schema)));
  return v;
}

// --- what is sent ----------------------------------------------------------------------------------------------

const HUGE = ['9007199254740993', '18446744073709551616', '1e400', '99999999999999999999999999', '2147483648'];
const junkText = fc.oneof(
  fc.constantFrom('', ' ', '\u0000', 'a\u0000b', '%', '../../etc/passwd', '..', '😀', 'é', '\u202e', 'null', '[]', '{}', '-1', '1.5', 'NaN', 'true', "'; DROP TABLE dp_audit; --"),
  fc.constantFrom(...HUGE),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  fc.constant('x'.repeat(5000)),
);
const junkJson: fc.Arbitrary<unknown> = fc.oneof(
  junkText,
  fc.constantFrom(null, true, false, 0, -1, 1.5, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, [], {}, [null], { a: { b: { c: [] } } }),
  fc.json({ maxDepth: 2 }).map((j) => JSON.parse(j) as unknown),
);

/** One value the contract accepts for a parameter, so that the other parameters' junk is what gets tested. */
function plausible(p: Param, taskId: string): string {
  const byName: Record<string, string> = { generationId: 'g1', partGen: 'g1', entityUid: 'u1', taskId, fileName: 'calendar.ics', folder: 'INBOX', 'Last-Event-ID': '0' };
  if (byName[p.name]) return byName[p.name];
  const s = p.schema;
  if (Array.isArray(s.enum)) return String(s.enum[0]);
  if (s.type === 'integer') return String(s.minimum ?? 0);
  if (s.type === 'boolean') return 'true';
  return 'a';
}

const VALID_BODIES: Record<string, Json> = {
  updateSettings: { retentionDays: 7, backupEmails: true, backupArchivedEmails: false, backupTime: '01:00', repositoryLocation: '/tmp', skippedTags: [] },
  startRestore: { operation: 'replace.mailbox', generationId: 'g1', entity: { kind: 'USER', uid: 'u1', domainUid: 'acme.lan' } },
  discoverRepository: { repositoryLocation: '/srv/backup' },
  checkGlobalRestore: { repositoryLocation: '/srv/backup', generationId: 'g1' },
  startGlobalRestore: { repositoryLocation: '/srv/backup', generationId: 'g1' },
  bmRun: { restoreOperationIdenfitier: 'replace.mailbox', generation: 'g1', item: { kind: 'USER', entryUid: 'u1', domainUid: 'acme.lan' } },
  bmUpdatePolicy: { daily: 7 },
};
/** BlueMind's GET with a body. */
const GET_WITH_BODY = new Set(['bmGetRestoreCapabilitiesByTags']);

interface Sent {
  url: string;
  headers: Record<string, string>;
  payload?: string;
}

function encodeSegment(s: string): string {
  // Dots too: a bare `..` segment would be a different URL, not a bad id of this operation.
  return encodeURIComponent(s).replace(/\./g, '%2E');
}

function requestOf(op: Operation, taskId: string): fc.Arbitrary<Sent> {
  const value = (p: Param) => fc.oneof({ weight: 1, arbitrary: fc.constant(plausible(p, taskId)) }, { weight: 3, arbitrary: junkText });
  const pathValues = fc.tuple(
    ...op.params.filter((p) => p.in === 'path').map((p) => value(p).filter((v) => v.length > 0).map((v) => [p.name, v] as const)),
  );
  const queryValues = fc.tuple(
    ...op.params.filter((p) => p.in === 'query').map((p) => fc.option(value(p).map((v) => [p.name, v] as const), { nil: undefined })),
  );
  const headerValues = fc.tuple(
    ...op.params.filter((p) => p.in === 'header').map((p) => fc.option(value(p).map((v) => [p.name, v] as const), { nil: undefined })),
  );
  // Raw bits of query string, not encoded: broken escapes, a NUL, repeated names, unknown names.
  const rawQuery = fc.option(fc.constantFrom('%00', '%ZZ', '%E0%A4', 'offset=1&offset=2', 'limit=%00', 'after=1e400', 'unknown=1', '&&&', '=x'), { nil: undefined });
  const valid = VALID_BODIES[op.id];
  const field = valid ? fc.constantFrom(...Object.keys(valid)) : fc.constant('x');
  const body: fc.Arbitrary<{ type?: string; payload?: string }> = fc.oneof(
    fc.constant({}),
    fc.constantFrom('null', '', '{', '[]', '"text"', '42', 'true', '{"__proto__": {"polluted": 1}}', '{"constructor": {"prototype": {}}}').map((payload) => ({ type: 'application/json', payload })),
    junkJson.map((j) => ({ type: 'application/json', payload: JSON.stringify(j) ?? 'null' })),
    fc.tuple(field, junkJson).map(([k, j]) => ({ type: 'application/json', payload: JSON.stringify({ ...(valid ?? {}), [k]: j }) })),
    fc.tuple(field).map(([k]) => ({ type: 'application/json', payload: JSON.stringify(Object.fromEntries(Object.entries(valid ?? {}).filter(([n]) => n !== k))) })),
    fc.constantFrom(
      { type: 'text/plain', payload: 'retentionDays=3' },
      { type: 'application/x-www-form-urlencoded', payload: 'retentionDays=3' },
      { type: 'application/xml', payload: '<settings/>' },
      { type: 'multipart/form-data; boundary=x', payload: '--x\r\n\r\n--x--' },
      { type: 'application/json; charset=utf-16', payload: '{}' },
      { type: 'application/octet-stream', payload: '\u0000\u0001' },
    ),
  );
  const sendsBody = op.method !== 'GET' || GET_WITH_BODY.has(op.id);
  return fc.record({ pathValues, queryValues, headerValues, rawQuery, body: sendsBody ? body : fc.constant<{ type?: string; payload?: string }>({}) }).map((r) => {
    let url = `${op.mount}${op.path}`;
    for (const [name, v] of r.pathValues) url = url.replace(`{${name}}`, encodeSegment(v));
    const query = [
      ...r.queryValues.filter((q) => q !== undefined).map(([n, v]) => `${encodeURIComponent(n)}=${encodeURIComponent(v)}`),
      ...(r.rawQuery ? [r.rawQuery] : []),
    ];
    if (query.length) url += `?${query.join('&')}`;
    const headers: Record<string, string> = { 'x-bm-apikey': KEYS.admin };
    for (const h of r.headerValues) if (h) headers[h[0].toLowerCase()] = h[1].replace(/[^\t\x20-\x7e]/g, '?');
    if (r.body.type) headers['content-type'] = r.body.type;
    return { url, headers, ...(r.body.payload !== undefined ? { payload: r.body.payload } : {}) };
  });
}

// --- what must come back ---------------------------------------------------------------------------------------

let api: TestApi;
let taskId: string;
const histogram = new Map<number, number>();
let sent = 0;

beforeAll(async () => {
  api = await startTestApi();
  const p = PRINCIPALS[KEYS.admin];
  const task = await api.deps.tasks.start({ kind: 'check', title: 'Check', actor: { login: p.login, uid: p.uid } }, async (ctx) => {
    ctx.info('checked');
    return { checked: 1 };
  });
  await api.deps.tasks.whenDone(task.id);
  taskId = task.id;
});
afterAll(async () => api?.close());

function conforms(op: Operation, req: Sent, res: { statusCode: number; headers: Record<string, unknown>; body: string }): string | null {
  const where = `${op.id} ${req.url} ${JSON.stringify(req.headers['content-type'] ?? null)} ${JSON.stringify(req.payload ?? null)?.slice(0, 200)}`;
  if (res.statusCode >= 500 && !(res.statusCode === 501 && op.responses['501'])) return `${res.statusCode} for ${where}: ${res.body.slice(0, 300)}`;
  const documented = op.responses[String(res.statusCode)];
  if (!documented) return `${res.statusCode} is not documented for ${where}: ${res.body.slice(0, 300)}`;
  const type = String(res.headers['content-type'] ?? '').split(';')[0].trim();
  const content = documented.content ?? {};
  if (!content[type]) return `${res.statusCode} answered ${type || 'no content type'}, documented ${Object.keys(content).join(', ')}, for ${where}`;
  if (type.endsWith('json')) {
    const validate = validatorOf(content[type].schema);
    if (!validate(JSON.parse(res.body))) return `${res.statusCode} body does not match the contract for ${where}: ${ajv.errorsText(validate.errors)}`;
  }
  return null;
}

it(`answers ${RUNS_PER_OPERATION} malformed requests to each operation of the contract with documented 4xx, never a 5xx`, async () => {
  expect(operations.length).toBeGreaterThan(20);
  for (const op of operations) {
    await fc.assert(
      fc.asyncProperty(requestOf(op, taskId), async (req) => {
        const res = await api.app.inject({ method: op.method as 'GET', url: req.url, headers: req.headers, ...(req.payload !== undefined ? { payload: req.payload } : {}) });
        sent++;
        histogram.set(res.statusCode, (histogram.get(res.statusCode) ?? 0) + 1);
        const wrong = conforms(op, req, res);
        if (wrong) throw new Error(wrong);
      }),
      { seed: SEED, numRuns: RUNS_PER_OPERATION, endOnFailure: true },
    );
  }
  const statuses = [...histogram].sort(([a], [b]) => a - b).map(([s, n]) => `${s}: ${n}`).join(', ');
  console.log(`fuzz: ${sent} requests over ${operations.length} operations (seed ${SEED}); statuses ${statuses}`);
}, 300_000);

it('a uuid that names no task is a 404, as documented (the fuzz sees real lookups, not only validation)', async () => {
  const r = await api.app.inject({ method: 'GET', url: `/api/dataprotect/tasks/${randomUUID()}/log?after=2147483647`, headers: { 'x-bm-apikey': KEYS.admin } });
  expect(r.statusCode).toBe(404);
  const ok = await api.app.inject({ method: 'GET', url: `/api/dataprotect/tasks/${taskId}/log?after=2147483647`, headers: { 'x-bm-apikey': KEYS.admin } });
  expect(ok.statusCode).toBe(200);
});
