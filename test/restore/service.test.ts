import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../server/dataprotect/principal.js';
import type { GenerationView } from '../../server/dataprotect/restore/generation-parts.js';
import { EntityRestores } from '../../server/dataprotect/restore/service.js';
import { KEYS, PRINCIPALS, startTestApi, type TestApi } from '../http/harness.js';
import { fixture, mailboxOverImap, type Fixture } from './fixture.js';

// The RestoreService behind the HTTP API: tasks, one restore per entity at a time, audit, OU scope.

let f: Fixture;
let api: TestApi;
let g1: GenerationView;
let ou: { uid: string; users: { uid: string; login: string; domain: string; displayName: string }[] };
let outside: { uid: string; domain: string; displayName: string };
const OU_KEY = 'key-restore-ou-scoped';

beforeAll(async () => {
  f = await fixture('service', 12);
  g1 = await f.backup(new Date('2026-01-08T01:00:00Z'));
  api = await startTestApi();
  api.deps.restores = new EntityRestores(api.deps.tasks, api.deps.audit, {
    repository: async () => f.repo, generations: f.generations, host: f.host, mailer: null,
  });
  // A leaf OU with users (a unit's scope includes its sub-units), and a user of the same domain outside it.
  const rows = await f.sql<{ ou: string; uid: string; login: string; domain: string; displayName: string }>(
    `SELECT oe.entry_uid AS ou, e.entry_uid AS uid, u.login, c.uid AS domain, e.displayname AS "displayName"
       FROM t_directory_entry e JOIN t_domain_user u ON u.item_id = e.item_id
       JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id
       JOIN t_directory_entry oe ON oe.item_id = e.orgunit_item_id
      WHERE e.kind = 'USER' AND NOT EXISTS (SELECT 1 FROM t_directory_ou k WHERE k.parent_item_id = e.orgunit_item_id)
      ORDER BY c.uid, oe.entry_uid, e.entry_uid`,
  );
  const first = rows[0];
  ou = { uid: first.ou, users: rows.filter((r) => r.ou === first.ou && r.domain === first.domain) };
  outside = rows.find((r) => r.domain === first.domain && r.ou !== first.ou)!;
  const scoped: Principal = {
    uid: 'ou-admin', login: `ouadmin@${first.domain}`, displayName: 'OU admin', email: `ouadmin@${first.domain}`,
    domainUid: first.domain, globalAdmin: false, roles: [], restoreOrgUnits: [first.ou],
  };
  PRINCIPALS[OU_KEY] = scoped;
});
afterAll(async () => {
  await api?.close();
  await f?.close();
});

const get = (key: string, url: string) => api.app.inject({ method: 'GET', url: `/api/dataprotect${url}`, headers: { 'x-bm-apikey': key } });
const post = (key: string, url: string, body: unknown) =>
  api.app.inject({ method: 'POST', url: `/api/dataprotect${url}`, headers: { 'x-bm-apikey': key, 'content-type': 'application/json' }, payload: JSON.stringify(body) });

async function finished(id: string) {
  for (const end = Date.now() + 240_000; Date.now() < end; ) {
    const t = (await get(KEYS.admin, `/tasks/${id}`)).json();
    if (t.status !== 'RUNNING') return t;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`task ${id} did not finish`);
}

describe('restore service over the API', () => {
  it('lists a generation\'s entities paged and searchable, with deleted ones flagged', async () => {
    const all = (await get(KEYS.admin, `/generations/${g1.id}/entities?limit=5`)).json();
    expect(all.items.length).toBe(5);
    expect(all.total).toBeGreaterThan(20);
    const u = ou.users[0];
    const hit = (await get(KEYS.admin, `/generations/${g1.id}/entities?search=${encodeURIComponent(u.login)}&kind=USER`)).json();
    expect(hit.items.map((x: { uid: string }) => x.uid)).toContain(u.uid);
    expect(hit.items.every((x: { deleted: boolean }) => x.deleted === false)).toBe(true);
    const ops = (await get(KEYS.admin, `/restore/capabilities?generationId=${g1.id}`)).json().map((o: { identifier: string }) => o.identifier);
    expect(ops).toEqual(expect.arrayContaining(['replace.mailbox', 'subfolder.mailbox', 'replace.calendars', 'complete.restore.user', 'restore.filehosting']));
    expect(ops.some((o: string) => o.startsWith('send.'))).toBe(false); // no SMTP relay configured here
  });

  it('browses a saved mailbox: folders, then messages with search', async () => {
    const u = ou.users[0];
    const folders = (await get(KEYS.admin, `/generations/${g1.id}/entities/${u.uid}/mail/folders`)).json();
    expect(folders.map((x: { path: string }) => x.path)).toEqual(expect.arrayContaining(['INBOX', 'Sent', 'Projects/2026']));
    const inbox = (await get(KEYS.admin, `/generations/${g1.id}/entities/${u.uid}/mail/messages?folder=INBOX&limit=2`)).json();
    expect(inbox.total).toBe(folders.find((x: { path: string }) => x.path === 'INBOX').messages);
    expect(inbox.items.length).toBe(Math.min(2, inbox.total));
    const word = inbox.items[0].subject.split(' ').find((w: string) => w.length > 4) ?? inbox.items[0].subject;
    const found = (await get(KEYS.admin, `/generations/${g1.id}/entities/${u.uid}/mail/messages?folder=INBOX&search=${encodeURIComponent(word)}`)).json();
    expect(found.items.map((m: { id: string }) => m.id)).toContain(inbox.items[0].id);
    expect(found.items.every((m: { subject: string; from: string }) => (m.subject + m.from).toLowerCase().includes(word.toLowerCase()))).toBe(true);
  });

  it('runs a restore as a task, refuses a second one of the same entity (409), and records it in the audit log', async () => {
    const u = ou.users[0];
    const body = { operation: 'subfolder.mailbox', generationId: g1.id, entity: { kind: 'USER', uid: u.uid, domainUid: u.domain } };
    const first = await post(KEYS.admin, '/restores', body);
    expect(first.statusCode).toBe(202);
    const second = await post(KEYS.admin, '/restores', body);
    expect(second.statusCode).toBe(409);
    const task = await finished(first.json().task.id);
    expect(task.status).toBe('SUCCEEDED');
    expect(task.result.messages).toBeGreaterThan(0);
    const log = (await get(KEYS.admin, `/tasks/${task.id}/log`)).json();
    expect(JSON.stringify(log)).toContain('subfolder.mailbox');
    const audit = (await get(KEYS.admin, `/audit?action=restore.end`)).json();
    expect(audit.items[0]).toMatchObject({ action: 'restore.end', generationId: g1.id, taskId: task.id, result: 'ok', target: `entity:${u.domain}/${u.uid}` });

    const c = await f.imap(`${u.login}@${u.domain}`);
    const now = await mailboxOverImap(c);
    await c.logout();
    expect(now.has('restored-2026-01-08')).toBe(true);
    // Once the first one ended, the entity can be restored again.
    const third = await post(KEYS.admin, '/restores', body);
    expect(third.statusCode).toBe(202);
    expect((await finished(third.json().task.id)).status).toBe('SUCCEEDED');
  });

  it('an administrator limited to an organisational unit sees and restores only its entities (404 outside)', async () => {
    const page = (await get(OU_KEY, `/generations/${g1.id}/entities?kind=USER&limit=500`)).json();
    const uids = page.items.map((x: { uid: string }) => x.uid).sort();
    expect(uids).toEqual(ou.users.map((x) => x.uid).sort());
    expect(uids).not.toContain(outside.uid);
    const refused = await post(OU_KEY, '/restores', { operation: 'replace.calendars', generationId: g1.id, entity: { kind: 'USER', uid: outside.uid, domainUid: outside.domain } });
    expect(refused.statusCode).toBe(404);
    expect(refused.json().detail).not.toContain(outside.displayName);
    expect((await get(OU_KEY, `/generations/${g1.id}/entities/${outside.uid}/mail/folders`)).statusCode).toBe(404);
    const inside = ou.users[ou.users.length - 1];
    const ok = await post(OU_KEY, '/restores', { operation: 'replace.calendars', generationId: g1.id, entity: { kind: 'USER', uid: inside.uid, domainUid: inside.domain } });
    expect(ok.statusCode).toBe(202);
    expect((await finished(ok.json().task.id)).status).toBe('SUCCEEDED');
  });

  it('domain roles act within their domain: other domains\' entities answer as if they did not exist', async () => {
    const users = await f.sql<{ uid: string; domain: string; displayName: string }>(
      `SELECT e.entry_uid AS uid, c.uid AS domain, e.displayname AS "displayName" FROM t_directory_entry e
         JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id
        WHERE e.kind = 'USER' AND c.uid IN ('acme.lan', 'globex.lan') ORDER BY c.uid, e.entry_uid`,
    );
    const acmeUser = users.find((u) => u.domain === 'acme.lan')!;
    const globexUser = users.find((u) => u.domain === 'globex.lan')!;
    expect(acmeUser && globexUser).toBeTruthy();
    const restoreOf = (u: typeof acmeUser) => ({ operation: 'replace.calendars', generationId: g1.id, entity: { kind: 'USER', uid: u.uid, domainUid: u.domain } });

    // acme.lan's manageRestore lists only acme.lan, and cannot reach a globex.lan user by its uid.
    const listed = (await get(KEYS.acmeRestore, `/generations/${g1.id}/entities?limit=500`)).json();
    expect(listed.total).toBeGreaterThan(0);
    expect(new Set(listed.items.map((x: { domainUid: string }) => x.domainUid))).toEqual(new Set(['acme.lan']));
    const search = (await get(KEYS.acmeRestore, `/generations/${g1.id}/entities?search=${encodeURIComponent(globexUser.uid)}`)).json();
    expect(search.total).toBe(0);
    const refused = await post(KEYS.acmeRestore, '/restores', restoreOf(globexUser));
    const unknown = await post(KEYS.acmeRestore, '/restores', { ...restoreOf(globexUser), entity: { ...restoreOf(globexUser).entity, uid: 'no-such-uid' } });
    expect(refused.statusCode).toBe(404);
    expect(unknown.statusCode).toBe(404);
    expect(refused.json().detail.replace(globexUser.uid, 'X')).toBe(unknown.json().detail.replace('no-such-uid', 'X'));
    expect(refused.body).not.toContain(globexUser.displayName);
    expect((await get(KEYS.acmeRestore, `/generations/${g1.id}/entities/${globexUser.uid}/mail/folders`)).statusCode).toBe(404);
    expect((await get(KEYS.acmeRestore, `/generations/${g1.id}/entities/${acmeUser.uid}/mail/folders`)).statusCode).toBe(200);

    // globex.lan's manageDataProtect restores in globex.lan, not in acme.lan.
    expect((await post(KEYS.globexDataProtect, '/restores', restoreOf(acmeUser))).statusCode).toBe(404);
    expect((await get(KEYS.globexDataProtect, `/generations/${g1.id}/entities/${acmeUser.uid}/mail/folders`)).statusCode).toBe(404);
    expect((await get(KEYS.globexDataProtect, `/generations/${g1.id}/entities/${globexUser.uid}/mail/folders`)).statusCode).toBe(200);
    const everyone = (await get(KEYS.admin, `/generations/${g1.id}/entities?limit=500`)).json();
    expect(everyone.items.some((x: { domainUid: string }) => x.domainUid === 'globex.lan')).toBe(true);
    expect(everyone.items.some((x: { domainUid: string }) => x.domainUid === 'acme.lan')).toBe(true);
  });

  it('refuses operations that do not apply (400) and unknown entities (404)', async () => {
    const u = ou.users[0];
    const bad = await post(KEYS.admin, '/restores', { operation: 'complete.restore.user', generationId: g1.id, entity: { kind: 'USER', uid: u.uid, domainUid: u.domain } });
    expect(bad.statusCode).toBe(400);
    const wrongKind = await post(KEYS.admin, '/restores', { operation: 'replace.ou', generationId: g1.id, entity: { kind: 'USER', uid: u.uid, domainUid: u.domain } });
    expect(wrongKind.statusCode).toBe(400);
    const missing = await post(KEYS.admin, '/restores', { operation: 'replace.calendars', generationId: g1.id, entity: { kind: 'USER', uid: 'nobody', domainUid: u.domain } });
    expect(missing.statusCode).toBe(404);
    expect((await get(KEYS.admin, `/generations/nope/entities`)).statusCode).toBe(404);
  });

  it('restores into another account: the target must be a live user in the caller\'s scope (404 otherwise), validated before any task', async () => {
    const [source, target] = ou.users;
    const body = (targetUid?: string) => ({
      operation: 'restore.into.account', generationId: g1.id, entity: { kind: 'USER', uid: source.uid, domainUid: source.domain }, ...(targetUid ? { targetUid } : {}),
    });
    // Outside the OU-limited administrator's units, an existing account answers as one that does not exist.
    const outsideRes = await post(OU_KEY, '/restores', body(outside.uid));
    const unknown = await post(OU_KEY, '/restores', body('no-such-account'));
    expect(outsideRes.statusCode).toBe(404);
    expect(unknown.statusCode).toBe(404);
    expect(outsideRes.json().detail.replace(outside.uid, 'X')).toBe(unknown.json().detail.replace('no-such-account', 'X'));
    expect(outsideRes.body).not.toContain(outside.displayName);
    const noTarget = await post(KEYS.admin, '/restores', body());
    expect(noTarget.statusCode).toBe(400);
    expect(noTarget.json().detail).toMatch(/targetUid/);
    expect((await post(KEYS.admin, '/restores', body(source.uid))).statusCode).toBe(400);
    const misplaced = await post(KEYS.admin, '/restores', { ...body(target.uid), operation: 'replace.calendars' });
    expect(misplaced.statusCode).toBe(400);
    expect(misplaced.json().detail).toMatch(/applies to restore.into.account only/);

    const ok = await post(OU_KEY, '/restores', body(target.uid));
    expect(ok.statusCode).toBe(202);
    const task = await finished(ok.json().task.id);
    expect(task.status).toBe('SUCCEEDED');
    expect(task.title).toBe(`Mail, calendars and contacts of ${source.displayName} restored into the account ${target.displayName}`);
    expect(task.result.folder).toBe(`restored-2026-01-08-${source.login.replace(/\./g, '_')}`);
    const c = await f.imap(`${target.login}@${target.domain}`);
    const now = await mailboxOverImap(c);
    await c.logout();
    expect(now.get(task.result.folder)!.length).toBeGreaterThan(0);
    const copies = await f.sql(`SELECT uid FROM t_container WHERE owner = $1 AND uid LIKE '%:restored:2026-01-08:%'`, [target.uid]);
    expect(copies.length).toBe((task.result.containers as unknown[]).length);
  });

  it('undelete.mail takes a valid period: bad dates and reversed periods are 400 before any task', async () => {
    const u = ou.users[0];
    const body = (from?: string, to?: string) => ({
      operation: 'undelete.mail', generationId: g1.id, entity: { kind: 'USER', uid: u.uid, domainUid: u.domain }, ...(from ? { from } : {}), ...(to ? { to } : {}),
    });
    for (const [from, to, field] of [[undefined, undefined, 'from'], ['yesterday', '2026-01-08', 'from'], ['2026-02-30', '2026-03-01', 'from'], ['2026-01-09', '2026-01-08', 'from'], ['2025-01-01', '2025-01-02', 'from']] as const) {
      const r = await post(KEYS.admin, '/restores', body(from, to));
      expect(r.statusCode, `${from} ${to}`).toBe(400);
      expect(r.body, `${from} ${to}`).toContain(field);
    }
    const ok = await post(KEYS.admin, '/restores', body('2026-01-08', '2026-01-08'));
    expect(ok.statusCode).toBe(202);
    const task = await finished(ok.json().task.id);
    expect(task.status).toBe('SUCCEEDED');
    expect(task.title).toBe(`Messages of ${ou.users[0].displayName} deleted between 2026-01-08 and 2026-01-08 restored`);
    expect(task.result.generations).toEqual([g1.id]);
  });
});
