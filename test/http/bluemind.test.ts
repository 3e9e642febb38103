import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerServer, type ServerRegistration } from '../../plugin/server.js';
import type { HostAuthenticator } from '../../server/dataprotect/auth.js';
import type { Principal } from '../../server/dataprotect/principal.js';
import { referenceInstallation } from '../../server/host/reference/installation.js';
import { dropDatabase } from '../../server/pg/databases.js';
import { POOL } from '../../server/store/tokens.js';
import { seededHost, type BackupFixture } from '../backup/helpers.js';
import { PG_BASE } from './harness.js';

// BlueMind's IDataProtect and ITask through the plugin as a host registers it, over real backups of the seeded
// reference host and a real PostgreSQL: every call, its shape, its roles. Responses are checked against the contract.

process.env.DP_VALIDATE_RESPONSES = '1';

const who = (name: string, domainUid: string, extra: Partial<Principal>): Principal => ({
  uid: `uid-${name}`, login: `${name}@${domainUid}`, displayName: name, email: null, domainUid, globalAdmin: false, roles: [], restoreOrgUnits: [], ...extra,
});
const PRINCIPALS: Record<string, Principal> = {
  'key-admin': who('admin0', 'global.virt', { globalAdmin: true }),
  'key-acme-dp': who('acmeadmin', 'acme.lan', { roles: ['manageDataProtect'] }),
  'key-none': who('user', 'acme.lan', {}),
};
const auth: HostAuthenticator = { authenticate: async (key) => PRINCIPALS[key] ?? null };

let f: BackupFixture;
let work: string;
let app: FastifyInstance;
let reg: ServerRegistration;
const databaseUrl = `${PG_BASE}/dp_test_bmcompat_${randomBytes(5).toString('hex')}`;

function bm(method: 'GET' | 'POST' | 'DELETE', url: string, o: { key?: string; body?: unknown; type?: string; raw?: string } = {}) {
  const payload = o.raw ?? (o.body !== undefined ? JSON.stringify(o.body) : undefined);
  return app.inject({
    method,
    url: url.startsWith('/api/') ? url : `/api/dataprotect${url}`,
    headers: { 'x-bm-apikey': o.key ?? 'key-admin', ...(payload !== undefined ? { 'content-type': o.type ?? 'application/json' } : {}) },
    ...(payload !== undefined ? { payload } : {}),
  });
}

interface BmStatus { steps: number; progress: number; lastLogEntry: string | null; state: string; result: string | null }

/** Polls BlueMind's task status as a script does, until the task has ended. */
async function ended(taskId: string, key = 'key-admin'): Promise<BmStatus> {
  for (let i = 0; i < 1200; i++) {
    const r = await bm('GET', `/api/tasks/${taskId}`, { key });
    expect(r.statusCode, r.body).toBe(200);
    const s = r.json() as BmStatus;
    if (s.state !== 'InProgress' && s.state !== 'NotStarted') return s;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`task ${taskId} did not end`);
}

interface BmGeneration {
  id: number;
  protectionTime: number;
  blueMind: { major: string; minor: string; release: string; displayName: string };
  withWarnings: boolean;
  withErrors: boolean;
  dataprotectId: string;
  parts: { id: number; generationId: number; begin: number; end: number | null; size: number; tag: string; server: string; valid: string; datatype: string; withErrors: boolean; withWarnings: boolean }[];
}

const generations = async () => (await bm('GET', '/generations')).json() as BmGeneration[];

beforeAll(async () => {
  f = await seededHost('bmcompat', 4);
  work = await mkdtemp(path.join(tmpdir(), 'dp-bmcompat-'));
  app = Fastify({ logger: false });
  reg = await registerServer(
    { fastify: app, databaseUrl, auth, defaultRepositoryLocation: path.join(work, 'repository'), taskFilesDir: path.join(work, 'files'), log: { info: () => {}, error: () => {} } },
    { installation: { port: f.host, productVersion: '5.1.2', mailer: null, recovery: referenceInstallation(f.host, '5.1.2') } },
  );
  await app.ready();
}, 300_000);
afterAll(async () => {
  await app?.close();
  await reg?.close();
  await dropDatabase(databaseUrl).catch(() => {});
  await f?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("BlueMind's IDataProtect and ITask", () => {
  it('_backup hands back a TaskRef; the task API gives its status, its current logs from an offset and its log stream', async () => {
    const r = await bm('POST', '/_backup');
    expect(r.statusCode, r.body).toBe(200);
    const { id } = r.json() as { id: string };
    expect(Object.keys(r.json())).toEqual(['id']);
    const s = await ended(id);
    expect(s.state, s.lastLogEntry ?? '').toBe('Success');
    expect(s.steps).toBeGreaterThan(0);
    expect(s.progress).toBe(s.steps);
    expect(JSON.parse(s.result!)).toHaveProperty('generationId');

    const logs = (await bm('GET', `/api/tasks/${id}/_currentLogs?offset=0`)).json() as string[];
    expect(logs.length).toBeGreaterThan(2);
    expect(logs.every((l) => typeof l === 'string')).toBe(true);
    expect(logs.join('\n')).toMatch(/mail\/imap: VALID/);
    expect((await bm('GET', `/api/tasks/${id}/_currentLogs?offset=2`)).json()).toEqual(logs.slice(2));
    expect((await bm('GET', `/api/tasks/${id}/_currentLogs`)).json()).toEqual(logs);

    const stream = await bm('GET', `/api/tasks/${id}/_log`);
    expect(stream.statusCode).toBe(200);
    const lines = stream.body.trim().split('\n').map((l) => JSON.parse(l) as { message: string; end: boolean; done: number; total: number; status?: string });
    expect(lines.slice(0, -1).map((l) => l.message)).toEqual(logs);
    expect(lines.slice(0, -1).every((l) => l.end === false)).toBe(true);
    const last = lines.at(-1)!;
    expect(last.end).toBe(true);
    expect(JSON.parse(last.status!)).toMatchObject({ state: 'Success' });

    expect((await bm('GET', '/api/tasks/00000000-0000-4000-8000-000000000000')).statusCode).toBe(404);
    expect((await bm('GET', '/api/tasks/not-a-task')).statusCode).toBe(400);
  }, 300_000);

  it('GET generations answers DataProtectGeneration, oldest first, with whole-number ids that stay through a _syncfs', async () => {
    const second = await bm('POST', '/_backup');
    expect((await ended(second.json().id)).state).toBe('Success');
    const gens = await generations();
    expect(gens).toHaveLength(2);
    const ours = (await bm('GET', '/generations/_detailed')).json() as { id: string; protectionTime: string; parts: { tag: string; status: string }[] }[];
    expect(gens.map((g) => g.dataprotectId)).toEqual(ours.map((g) => g.id).reverse());
    expect(gens[0].id).toBeLessThan(gens[1].id);
    expect(gens[0].protectionTime).toBeLessThanOrEqual(gens[1].protectionTime);
    for (const [i, g] of gens.entries()) {
      const o = ours[ours.length - 1 - i];
      expect(Number.isInteger(g.id)).toBe(true);
      expect(g.protectionTime).toBe(Date.parse(o.protectionTime));
      expect(g.blueMind).toEqual({ major: '5', minor: '1', release: '2', displayName: '5.1.2' });
      expect(g).toMatchObject({ withWarnings: false, withErrors: false });
      expect(g.parts.map((p) => p.tag)).toEqual(o.parts.map((p) => p.tag));
      for (const p of g.parts) {
        expect(p).toMatchObject({ generationId: g.id, valid: 'VALID', withErrors: false, withWarnings: false });
        expect(Number.isInteger(p.id) && Number.isInteger(p.size) && typeof p.begin === 'number').toBe(true);
        expect(p.datatype).toBe(p.tag.split('/')[1]);
      }
    }
    const partIds = gens.flatMap((g) => g.parts.map((p) => p.id));
    expect(new Set([...partIds, ...gens.map((g) => g.id)]).size).toBe(partIds.length + gens.length);

    // The list is rebuilt from the repository alone: BlueMind's _syncfs answers once it is done, numbers unchanged.
    await reg.container.resolve(POOL).query('DELETE FROM dp_generation');
    const sync = await bm('POST', '/_syncfs');
    expect(sync.statusCode, sync.body).toBe(204);
    expect(await generations()).toEqual(gens);
  }, 300_000);

  it('restore/_capabilities lists one operation per kind; _capabilities_by_tags reads the tags from a GET body or ?tags=', async () => {
    const all = (await bm('GET', '/restore/_capabilities')).json() as { identifier: string; kind: string | null; requiredTag: string | null }[];
    expect(all).toContainEqual({ identifier: 'replace.mailbox', kind: 'USER', requiredTag: 'mail/imap' });
    expect(all).toContainEqual({ identifier: 'replace.mailbox', kind: 'MAILSHARE', requiredTag: 'mail/imap' });
    expect(all).toContainEqual({ identifier: 'complete.restore.user', kind: null, requiredTag: null });

    const none = (await bm('GET', '/restore/_capabilities_by_tags', { body: [] })).json() as typeof all;
    expect(none.length).toBeGreaterThan(0);
    expect(none.every((o) => o.requiredTag === null)).toBe(true);
    const mail = (await bm('GET', '/restore/_capabilities_by_tags', { body: ['mail/imap'] })).json() as typeof all;
    expect(mail).toContainEqual({ identifier: 'replace.mailbox', kind: 'USER', requiredTag: 'mail/imap' });
    expect(mail.some((o) => o.requiredTag === 'filehosting/data')).toBe(false);
    expect((await bm('GET', '/restore/_capabilities_by_tags?tags=mail/imap')).json()).toEqual(mail);

    const notJson = await bm('GET', '/restore/_capabilities_by_tags', { raw: '["mail/imap"' });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json().detail).toMatch(/not JSON/);
    expect((await bm('GET', '/restore/_capabilities_by_tags', { body: { tags: ['mail/imap'] } })).statusCode).toBe(400);
    expect((await bm('GET', '/restore/_capabilities_by_tags', { raw: 'mail/imap', type: 'text/plain' })).statusCode).toBe(415);
    expect((await bm('GET', '/restore/_capabilities', { key: 'key-none' })).statusCode).toBe(403);
  });

  it('_content hands back a task whose result is GenerationContent; an OU-limited restorer sees their units only', async () => {
    const [g] = await generations();
    const r = await bm('POST', `/_content/${g.id}`);
    expect(r.statusCode, r.body).toBe(200);
    const s = await ended(r.json().id);
    expect(s.state, s.lastLogEntry ?? '').toBe('Success');
    const content = JSON.parse(s.result!) as {
      generationId: number;
      domains: { uid: string; value: { name: string } }[];
      entries: { uid: string; displayName: string; value: { entryUid: string; kind: string; domainUid: string; orgUnitPath: string[] } }[];
      capabilities: { identifier: string; kind: string | null }[];
    };
    expect(content.generationId).toBe(g.id);
    expect(content.domains.map((d) => d.uid)).toEqual(expect.arrayContaining(['acme.lan', 'globex.lan']));
    expect(content.entries.some((e) => e.value.kind === 'USER')).toBe(true);
    expect(content.entries.some((e) => e.value.kind === 'ORG_UNIT')).toBe(true);
    expect(content.capabilities).toContainEqual({ identifier: 'replace.mailbox', kind: 'USER', requiredTag: 'mail/imap' });
    // This API's id names the same generation.
    const byName = await ended((await bm('POST', `/_content/${g.dataprotectId}`)).json().id);
    expect(JSON.parse(byName.result!)).toEqual(content);

    const placed = content.entries.find((e) => e.value.kind === 'USER' && e.value.orgUnitPath.length > 0)!;
    const ou = placed.value.orgUnitPath.at(-1)!;
    PRINCIPALS['key-ou'] = who('ourestorer', placed.value.domainUid, { restoreOrgUnits: [ou] });
    const scoped = await ended((await bm('POST', `/_content/${g.id}`, { key: 'key-ou' })).json().id, 'key-ou');
    const seen = JSON.parse(scoped.result!) as typeof content;
    expect(seen.entries.length).toBeGreaterThan(0);
    expect(seen.entries.length).toBeLessThan(content.entries.length);
    expect(seen.entries.every((e) => e.value.domainUid === placed.value.domainUid && [...e.value.orgUnitPath, e.uid].includes(ou))).toBe(true);
    // Tasks are their starter's: the restorer does not read the administrator's.
    expect((await bm('GET', `/api/tasks/${r.json().id}`, { key: 'key-ou' })).statusCode).toBe(403);

    expect((await bm('POST', '/_content/999999')).statusCode).toBe(404);
    expect((await bm('POST', '/_content/20990101-000000-ffff')).statusCode).toBe(404);
    expect((await bm('POST', `/_content/${g.id}`, { key: 'key-none' })).statusCode).toBe(403);
  }, 300_000);

  it('restore runs a RestoreDefinition (BlueMind field names) as a task', async () => {
    const [g] = await generations();
    const content = JSON.parse((await ended((await bm('POST', `/_content/${g.id}`)).json().id)).result!) as {
      entries: { uid: string; displayName: string; value: { kind: string; domainUid: string } }[];
    };
    const user = content.entries.find((e) => e.value.kind === 'USER')!;
    const definition = {
      restoreOperationIdenfitier: 'replace.calendars',
      generation: g.id,
      item: { kind: 'USER', entryUid: user.uid, domainUid: user.value.domainUid, displayName: user.displayName, datalocation: null },
    };
    const r = await bm('POST', '/restore', { body: definition });
    expect(r.statusCode, r.body).toBe(200);
    const s = await ended(r.json().id);
    expect(s.state, s.lastLogEntry ?? '').toBe('Success');
    expect((await bm('GET', `/api/tasks/${r.json().id}/_currentLogs?offset=0`)).json().length).toBeGreaterThan(0);

    const typo = await bm('POST', '/restore', { body: { ...definition, restoreOperationIdentifier: 'replace.calendars' } });
    expect(typo.statusCode).toBe(400);
    expect((await bm('POST', '/restore', { body: { ...definition, generation: 999999 } })).statusCode).toBe(404);
    expect((await bm('POST', '/restore', { body: { ...definition, generation: -1 } })).statusCode).toBe(400);
  }, 300_000);

  it('policy reads and writes the retention (daily in days), keeping the other settings; installation-wide', async () => {
    expect((await bm('GET', '/policy')).json()).toEqual({ daily: 7, weekly: 0, monthly: 0 });
    const before = (await bm('GET', '/settings')).json();
    const w = await bm('POST', '/policy', { body: { daily: 3, weekly: 2 } });
    expect(w.statusCode, w.body).toBe(204);
    expect(w.body).toBe('');
    expect((await bm('GET', '/policy')).json()).toEqual({ daily: 3, weekly: 2, monthly: 0 });
    const after = (await bm('GET', '/settings')).json();
    expect(after).toMatchObject({ retentionDays: 3, keepWeekly: 2, backupTime: before.backupTime, repositoryLocation: before.repositoryLocation });
    for (const bad of [{ daily: 0 }, { daily: '3' }, {}, { daily: 3, yearly: 1 }]) expect((await bm('POST', '/policy', { body: bad })).statusCode).toBe(400);
    expect((await bm('POST', '/policy', { body: { daily: 5 }, key: 'key-acme-dp' })).statusCode).toBe(403);
    expect((await bm('GET', '/policy', { key: 'key-acme-dp' })).statusCode).toBe(403);
    await bm('POST', '/policy', { body: { daily: 7 } });
  });

  it('_install is the global restore: refused on an installation that is not blank, installation-wide', async () => {
    const [g] = await generations();
    const r = await bm('POST', '/_install', { raw: String(g.id) });
    expect(r.statusCode, r.body).toBe(409);
    expect(r.json().detail).toMatch(/blank|wipe|not empty/i);
    expect((await bm('POST', '/_install', { raw: '999999' })).statusCode).toBe(404);
    expect((await bm('POST', '/_install', { raw: '{"generation": 1}' })).statusCode).toBe(400);
    expect((await bm('POST', '/_install', { raw: String(g.id), key: 'key-acme-dp' })).statusCode).toBe(403);
    expect((await bm('POST', '/_backup', { key: 'key-acme-dp' })).statusCode).toBe(403);
    expect((await bm('POST', '/_syncfs', { key: 'key-acme-dp' })).statusCode).toBe(403);
  });

  it('DELETE generations?generationId= forgets a generation; the others keep their numbers', async () => {
    const [oldest, newest] = await generations();
    expect((await bm('DELETE', `/generations?generationId=${oldest.id}`, { key: 'key-acme-dp' })).statusCode).toBe(403);
    const r = await bm('DELETE', `/generations?generationId=${oldest.id}`);
    expect(r.statusCode, r.body).toBe(200);
    expect((await ended(r.json().id)).state).toBe('Success');
    expect(await generations()).toEqual([newest]);
    expect((await bm('DELETE', `/generations?generationId=${oldest.id}`)).statusCode).toBe(404);
    expect((await bm('DELETE', '/generations')).statusCode).toBe(400);
  }, 300_000);
});
