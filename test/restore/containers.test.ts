import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import ICAL from 'ical.js';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../server/dataprotect/principal.js';
import type { GenerationView } from '../../server/dataprotect/restore/generation-parts.js';
import { smtpMailer } from '../../server/dataprotect/restore/mailer.js';
import { runRestore, validate } from '../../server/dataprotect/restore/operations/index.js';
import { EntityRestores } from '../../server/dataprotect/restore/service.js';
import { KEYS, PRINCIPALS, startTestApi, type TestApi } from '../http/harness.js';
import { fixture, recordingContext, type Fixture } from './fixture.js';

// Calendars, address books, task lists, notes and web-app data against the real database: one container or chosen
// items of it (replaced, or only what is missing added back), notes and web-app data (BlueMind's replace.notes and
// replace.webappdata), the domain calendars and address books and the resources' bookings, and the API that lists a
// generation's containers and items.

let f: Fixture;
let g1: GenerationView;
let api: TestApi;
let users: { uid: string; login: string; domain: string; email: string; ou: string | null }[];
let smtp: SMTPServer;
let smtpPort: number;
const received: ParsedMail[] = [];

beforeAll(async () => {
  f = await fixture('containers', 12, { dovecot: false });
  users = await f.sql(
    `SELECT e.entry_uid AS uid, u.login, c.uid AS domain, e.email, oe.entry_uid AS ou
       FROM t_directory_entry e JOIN t_domain_user u ON u.item_id = e.item_id
       JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id
       LEFT JOIN t_directory_entry oe ON oe.item_id = e.orgunit_item_id
      WHERE e.kind = 'USER' ORDER BY e.entry_uid`,
  );
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, _session, cb) {
      simpleParser(stream).then((m) => (received.push(m), cb()), cb);
    },
  });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', () => r()));
  smtpPort = (smtp.server.address() as AddressInfo).port;
  g1 = await f.backup(new Date('2026-01-07T01:00:00Z'));
  api = await startTestApi();
  api.deps.restores = new EntityRestores(api.deps.tasks, api.deps.audit, {
    repository: async () => f.repo, generations: f.generations, host: f.host, mailer: null,
  });
});
afterAll(async () => {
  await api?.close();
  await new Promise<void>((r) => (smtp ? smtp.close(() => r()) : r()));
  await f?.close();
});

/** A container's items with their rows, database ids left out. */
async function containerState(uid: string) {
  return f.sql(
    `SELECT i.uid, i.version, i.displayname, i.created, i.updated, i.flags, i.createdby, i.updatedby,
            (SELECT json_agg(to_jsonb(r) - 'item_id' ORDER BY r.recurid_timestamp NULLS FIRST, r.dtstart_timestamp) FROM t_calendar_vevent r WHERE r.item_id = i.id)::text AS ev,
            (SELECT to_jsonb(r) - 'item_id' FROM t_addressbook_vcard r WHERE r.item_id = i.id)::text AS card,
            (SELECT to_jsonb(r) - 'item_id' FROM t_todolist_vtodo r WHERE r.item_id = i.id)::text AS todo,
            (SELECT to_jsonb(r) - 'item_id' FROM t_notes_vnote r WHERE r.item_id = i.id)::text AS note,
            (SELECT to_jsonb(r) - 'item_id' FROM t_webappdata r WHERE r.item_id = i.id)::text AS data,
            (SELECT to_jsonb(s) - 'item_id' FROM t_calendar_series s WHERE s.item_id = i.id)::text AS series
       FROM t_container_item i JOIN t_container c ON c.id = i.container_id WHERE c.uid = $1 ORDER BY i.uid`,
    [uid],
  );
}

async function aclOf(uid: string) {
  return f.sql(`SELECT subject, verb, position FROM t_container_acl a JOIN t_container c ON c.id = a.container_id WHERE c.uid = $1 ORDER BY 1, 2, 3`, [uid]);
}

async function itemUids(container: string): Promise<string[]> {
  return (await containerState(container)).map((r) => r.uid as string);
}

async function deleteItems(container: string, uids: string[]) {
  await f.sql(`DELETE FROM t_container_item WHERE container_id = (SELECT id FROM t_container WHERE uid = $1) AND uid = ANY($2)`, [container, uids]);
}

async function run(op: Parameters<Fixture['plan']>[1], uid: string, extra: Parameters<Fixture['plan']>[3] = {}, mailer: Parameters<Fixture['env']>[0] = null) {
  const p = await f.plan(g1, op, uid, extra);
  await validate(f.env(mailer), p);
  const rc = recordingContext();
  const result = await runRestore(f.env(mailer), p, rc.ctx);
  return { result, ...rc };
}

describe('one container of a user', () => {
  it('replace.container restores one calendar as saved and leaves the user\'s other calendars as they are now', async () => {
    // A user with two calendars (every tenth user of a domain has a "Projects" calendar).
    const [owner] = await f.sql<{ owner: string }>(`SELECT owner FROM t_container WHERE container_type = 'calendar' AND uid LIKE 'calendar:UserCreated:%' ORDER BY owner LIMIT 1`);
    expect(owner, 'the seed gives some user a second calendar').toBeTruthy();
    const main = `calendar:Default:${owner.owner}`;
    const [projects] = await f.sql<{ uid: string }>(`SELECT uid FROM t_container WHERE owner = $1 AND uid LIKE 'calendar:UserCreated:%'`, [owner.owner]);
    const before = { items: await containerState(main), acl: await aclOf(main) };
    const uids = await itemUids(main);
    await deleteItems(main, uids.slice(0, 3));
    await f.sql(`UPDATE t_calendar_vevent SET summary = 'changed' WHERE item_id IN (SELECT i.id FROM t_container_item i JOIN t_container c ON c.id = i.container_id WHERE c.uid = $1)`, [main]);
    await f.sql(`INSERT INTO t_container_item (container_id, uid, displayname) SELECT id, 'added-after', 'Added' FROM t_container WHERE uid = $1`, [main]);
    await f.sql(`DELETE FROM t_container_acl WHERE container_id = (SELECT id FROM t_container WHERE uid = $1)`, [main]);
    // The other calendar changes too: the restore must leave that change alone.
    await deleteItems(projects.uid, (await itemUids(projects.uid)).slice(0, 1));
    const projectsNow = await containerState(projects.uid);

    const { result } = await run('replace.container', owner.owner, { container: main });
    expect(result).toMatchObject({ container: main, items: uids.length, skipped: 0, absent: [] });
    expect({ items: await containerState(main), acl: await aclOf(main) }).toEqual(before);
    expect(await containerState(projects.uid)).toEqual(projectsNow);
  });

  it('addmissing.container brings back deleted contacts of one address book and keeps the ones changed since', async () => {
    const u = users[1];
    const book = `book:Contacts_${u.uid}`;
    const before = await containerState(book);
    const uids = before.map((r) => r.uid as string);
    await deleteItems(book, uids.slice(0, 2));
    await f.sql(`UPDATE t_addressbook_vcard SET note = 'edited since' WHERE item_id IN (SELECT i.id FROM t_container_item i JOIN t_container c ON c.id = i.container_id WHERE c.uid = $1 AND i.uid = $2)`, [book, uids[3]]);
    const { result } = await run('addmissing.container', u.uid, { container: book });
    expect(result).toMatchObject({ items: 2, skipped: uids.length - 2 });
    const after = await containerState(book);
    expect(after.map((r) => r.uid)).toEqual(uids);
    expect(after.filter((r) => r.uid !== uids[3])).toEqual(before.filter((r) => r.uid !== uids[3]));
    expect(JSON.parse(after.find((r) => r.uid === uids[3])!.card as string).note).toBe('edited since');
  });

  it('addmissing.container recreates a deleted task list with its sharing', async () => {
    const u = users[2];
    const list = `todolist:default_${u.uid}`;
    const before = { items: await containerState(list), acl: await aclOf(list) };
    await f.sql(`DELETE FROM t_container WHERE uid = $1`, [list]);
    const { result } = await run('addmissing.container', u.uid, { container: list });
    expect(result.items).toBe(before.items.length);
    expect({ items: await containerState(list), acl: await aclOf(list) }).toEqual(before);
  });

  it('refuses a container the entity does not have, and item restores without items', async () => {
    const u = users[3];
    await expect(run('replace.container', u.uid, {})).rejects.toThrow(/needs the container/);
    await expect(run('replace.container', u.uid, { container: `calendar:Default:${users[4].uid}` })).rejects.toThrow(/has no container/);
    await expect(run('replace.items', u.uid, { container: `calendar:Default:${u.uid}` })).rejects.toThrow(/needs the items/);
    await expect(run('replace.calendars', u.uid, { container: `calendar:Default:${u.uid}` })).rejects.toThrow(/no single container/);
  });
});

describe('chosen items', () => {
  it('replace.items puts one event back as saved (a recurring one, with its exceptions) and touches no other event', async () => {
    const u = users[5];
    const cal = `calendar:Default:${u.uid}`;
    const before = await containerState(cal);
    // A series with an exception, if the seed gave one; else any event.
    const chosen = (before.find((r) => r.series && JSON.parse(r.ev as string).length > 1) ?? before[0]).uid as string;
    await f.sql(`UPDATE t_calendar_vevent SET summary = 'moved by mistake', dtstart_timestamp = dtstart_timestamp + interval '1 day' WHERE item_id IN (SELECT i.id FROM t_container_item i JOIN t_container c ON c.id = i.container_id WHERE c.uid = $1)`, [cal]);
    const changed = await containerState(cal);
    const { result } = await run('replace.items', u.uid, { container: cal, itemUids: [chosen, 'not-saved-uid'] });
    expect(result).toMatchObject({ items: 1, skipped: 0, absent: ['not-saved-uid'] });
    const after = await containerState(cal);
    expect(after.find((r) => r.uid === chosen)).toEqual(before.find((r) => r.uid === chosen));
    expect(after.filter((r) => r.uid !== chosen)).toEqual(changed.filter((r) => r.uid !== chosen));
  });

  it('addmissing.items brings back a deleted event and leaves a chosen one that still exists as it is now', async () => {
    const u = users[6];
    const cal = `calendar:Default:${u.uid}`;
    const before = await containerState(cal);
    const [gone, kept] = [before[1].uid as string, before[2].uid as string];
    await deleteItems(cal, [gone]);
    await f.sql(`UPDATE t_calendar_vevent SET location = 'elsewhere' WHERE item_id IN (SELECT i.id FROM t_container_item i JOIN t_container c ON c.id = i.container_id WHERE c.uid = $1 AND i.uid = $2)`, [cal, kept]);
    const keptNow = (await containerState(cal)).find((r) => r.uid === kept);
    const { result, log } = await run('addmissing.items', u.uid, { container: cal, itemUids: [gone, kept] });
    expect(result).toMatchObject({ items: 1, skipped: 1 });
    expect(log.join('\n')).toContain('1 item was still there and left as it is');
    const after = await containerState(cal);
    expect(after.find((r) => r.uid === gone)).toEqual(before.find((r) => r.uid === gone));
    expect(after.find((r) => r.uid === kept)).toEqual(keptNow);
    expect(after.length).toBe(before.length);
  });

  it('replace.items restores one contact of an address book', async () => {
    const u = users[7];
    const book = `book:Contacts_${u.uid}`;
    const before = await containerState(book);
    const chosen = before[0].uid as string;
    await deleteItems(book, [chosen]);
    await f.sql(`UPDATE t_addressbook_vcard SET company = 'Changed' WHERE item_id IN (SELECT i.id FROM t_container_item i JOIN t_container c ON c.id = i.container_id WHERE c.uid = $1)`, [book]);
    const others = (await containerState(book));
    await run('replace.items', u.uid, { container: book, itemUids: [chosen] });
    const after = await containerState(book);
    expect(after.find((r) => r.uid === chosen)).toEqual(before.find((r) => r.uid === chosen));
    expect(after.filter((r) => r.uid !== chosen)).toEqual(others);
  });
});

describe('notes and web-app data', () => {
  it('replace.notes and replace.webappdata make the user\'s notes and web-app data what they were, recreating a deleted container', async () => {
    const u = users[8];
    const notes = `notes:default_${u.uid}`;
    const data = `webappdata:${u.uid}`;
    const before = { notes: await containerState(notes), data: await containerState(data), acl: await aclOf(notes) };
    expect(before.notes.length).toBeGreaterThan(1);
    expect(before.data.length).toBeGreaterThan(1);
    await f.sql(`DELETE FROM t_container WHERE uid = $1`, [notes]);
    await f.sql(`UPDATE t_webappdata SET value = '{"view":"year"}' WHERE item_id IN (SELECT i.id FROM t_container_item i JOIN t_container c ON c.id = i.container_id WHERE c.uid = $1)`, [data]);
    await f.sql(`INSERT INTO t_container_item (container_id, uid, displayname) SELECT id, 'added:key', 'added:key' FROM t_container WHERE uid = $1`, [data]);
    const n = await run('replace.notes', u.uid);
    const d = await run('replace.webappdata', u.uid);
    expect(n.result.items).toBe(before.notes.length);
    expect(d.result.items).toBe(before.data.length);
    expect({ notes: await containerState(notes), data: await containerState(data), acl: await aclOf(notes) }).toEqual(before);
  });

  it('the API offers replace.notes and replace.webappdata for users', async () => {
    const ops = (await api.app.inject({ method: 'GET', url: `/api/dataprotect/restore/capabilities?generationId=${g1.id}`, headers: { 'x-bm-apikey': KEYS.admin } })).json();
    const byId = new Map(ops.map((o: { identifier: string; kinds: string[] }) => [o.identifier, o.kinds]));
    expect(byId.get('replace.notes')).toEqual(['USER']);
    expect(byId.get('replace.webappdata')).toEqual(['USER']);
    expect(byId.get('replace.items')).toEqual(expect.arrayContaining(['USER', 'CALENDAR', 'ADDRESSBOOK']));
  });
});

describe('domain calendars, domain address books, resources', () => {
  it('the CALENDAR filter lists the domain calendars, and replace.domain.calendars restores one', async () => {
    const page = (await api.app.inject({ method: 'GET', url: `/api/dataprotect/generations/${g1.id}/entities?kind=CALENDAR`, headers: { 'x-bm-apikey': KEYS.admin } })).json();
    expect(page.total).toBeGreaterThanOrEqual(2);
    const cal = page.items[0].uid as string;
    expect(cal).toMatch(/^calendar:Domain:/);
    const before = { items: await containerState(cal), acl: await aclOf(cal) };
    expect(before.items.length).toBeGreaterThan(0);
    await f.sql(`DELETE FROM t_container WHERE uid = $1`, [cal]);
    // A deleted domain calendar is flagged so, and comes back.
    const p = await f.plan(g1, 'replace.domain.calendars', cal);
    expect(p.entry).toMatchObject({ kind: 'CALENDAR', deleted: true });
    await runRestore(f.env(), p, recordingContext().ctx);
    expect({ items: await containerState(cal), acl: await aclOf(cal) }).toEqual(before);
  });

  it('send.domain.calendars.ics, send.domain.books.vcf and send.resources mail parsable exports to the administrator', async () => {
    received.length = 0;
    const mailer = smtpMailer({ host: '127.0.0.1', port: smtpPort, requireTls: false });
    const domain = users[0].domain;
    const [calRow] = await f.sql<{ uid: string }>(`SELECT uid FROM t_container WHERE owner = $1 AND container_type = 'calendar' ORDER BY uid LIMIT 1`, [domain]);
    const [res] = await f.sql<{ uid: string }>(`SELECT e.entry_uid AS uid FROM t_directory_entry e JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id WHERE e.kind = 'RESOURCE' AND c.uid = $1 ORDER BY 1 LIMIT 1`, [domain]);
    const book = `addressbook_${domain}`;
    const runs = [
      await run('send.domain.calendars.ics', calRow.uid, {}, mailer),
      await run('send.domain.books.vcf', book, {}, mailer),
      await run('send.resources', res.uid, {}, mailer),
    ];
    for (const r of runs) expect(r.result.recipient).toBe('admin0@global.virt');
    expect(received.length).toBe(3);
    const count = async (container: string) => (await containerState(container)).length;
    const attachment = (i: number) => {
      expect(received[i].from?.text).toBe(`no-reply@${domain}`);
      expect(received[i].to && 'text' in received[i].to ? received[i].to.text : '').toContain('admin0@global.virt');
      expect(received[i].attachments.length).toBe(1);
      return received[i].attachments[0].content.toString('utf8');
    };
    const events = (text: string) => new ICAL.Component(ICAL.parse(text) as unknown[]).getAllSubcomponents('vevent');
    expect(new Set(events(attachment(0)).map((e) => e.getFirstPropertyValue('uid'))).size).toBe(await count(calRow.uid));
    const parsed = ICAL.parse(attachment(1)) as unknown[];
    expect((Array.isArray(parsed[0]) ? parsed : [parsed]).length).toBe(await count(book));
    expect(new Set(events(attachment(2)).map((e) => e.getFirstPropertyValue('uid'))).size).toBe(await count(`calendar:${res.uid}`));
    // The same files are kept with the task.
    expect(runs.map((r) => r.files.length)).toEqual([1, 1, 1]);
  });
});

describe('listing a generation\'s containers and items', () => {
  const get = (key: string, url: string) => api.app.inject({ method: 'GET', url: `/api/dataprotect${url}`, headers: { 'x-bm-apikey': key } });

  it('lists a user\'s saved containers with whether they still exist, and a calendar\'s events with summary, date and existence', async () => {
    const u = users[9];
    const cal = `calendar:Default:${u.uid}`;
    await f.sql(`DELETE FROM t_container WHERE uid = $1`, [`todolist:default_${u.uid}`]);
    const containers = (await get(KEYS.admin, `/generations/${g1.id}/entities/${u.uid}/containers`)).json();
    const types = containers.map((c: { type: string }) => c.type).sort();
    expect(types).toEqual(expect.arrayContaining(['addressbook', 'calendar', 'notes', 'todolist', 'webappdata']));
    expect(containers.find((c: { uid: string }) => c.uid === `todolist:default_${u.uid}`).exists).toBe(false);
    const c = containers.find((x: { uid: string }) => x.uid === cal);
    expect(c).toMatchObject({ type: 'calendar', exists: true });

    const saved = await containerState(cal);
    const gone = saved[0].uid as string;
    await deleteItems(cal, [gone]);
    const page = (await get(KEYS.admin, `/generations/${g1.id}/entities/${u.uid}/containers/${encodeURIComponent(cal)}/items?limit=500`)).json();
    expect(page.total).toBe(c.items);
    expect(page.items.map((i: { uid: string }) => i.uid)).toEqual(saved.map((r) => r.uid));
    const first = page.items[0];
    const ev = JSON.parse(saved[0].ev as string)[0];
    expect(first).toMatchObject({ uid: gone, summary: ev.summary, exists: false });
    expect(first.date.slice(0, 10)).toBe(String(ev.dtstart_timestamp).slice(0, 10));
    expect(page.items.slice(1).every((i: { exists: boolean }) => i.exists)).toBe(true);
    const missing = (await get(KEYS.admin, `/generations/${g1.id}/entities/${u.uid}/containers/${encodeURIComponent(cal)}/items?missing=true`)).json();
    expect(missing.items.map((i: { uid: string }) => i.uid)).toEqual([gone]);
    const word = String(ev.summary).split(' ').pop()!.toLowerCase();
    const found = (await get(KEYS.admin, `/generations/${g1.id}/entities/${u.uid}/containers/${encodeURIComponent(cal)}/items?search=${encodeURIComponent(word)}`)).json();
    expect(found.items.map((i: { uid: string }) => i.uid)).toContain(gone);
    expect(found.items.every((i: { summary: string }) => i.summary.toLowerCase().includes(word))).toBe(true);
  });

  it('restores one event through the API (a task, audited), then lists it as existing again', async () => {
    const u = users[10];
    const cal = `calendar:Default:${u.uid}`;
    const saved = await containerState(cal);
    const gone = saved[2].uid as string;
    await deleteItems(cal, [gone]);
    const r = await api.app.inject({
      method: 'POST', url: '/api/dataprotect/restores', headers: { 'x-bm-apikey': KEYS.admin, 'content-type': 'application/json' },
      payload: JSON.stringify({ operation: 'addmissing.items', generationId: g1.id, entity: { kind: 'USER', uid: u.uid, domainUid: u.domain }, container: cal, itemUids: [gone] }),
    });
    expect(r.statusCode, r.body).toBe(202);
    const task = r.json().task;
    expect(task.title).toMatch(/^Chosen items of .+ of .+ restored where missing$/);
    let t = task;
    for (const end = Date.now() + 240_000; t.status === 'RUNNING' && Date.now() < end; ) {
      await new Promise((res) => setTimeout(res, 50));
      t = (await get(KEYS.admin, `/tasks/${task.id}`)).json();
    }
    expect(t.status).toBe('SUCCEEDED');
    expect(await containerState(cal)).toEqual(saved);
    const page = (await get(KEYS.admin, `/generations/${g1.id}/entities/${u.uid}/containers/${encodeURIComponent(cal)}/items?missing=true`)).json();
    expect(page.total).toBe(0);
  });

  it('answers 400 for a container restore without its container, 404 for a container the entity does not have, and 404 outside the caller\'s units', async () => {
    const u = users[11];
    const bad = await api.app.inject({
      method: 'POST', url: '/api/dataprotect/restores', headers: { 'x-bm-apikey': KEYS.admin, 'content-type': 'application/json' },
      payload: JSON.stringify({ operation: 'replace.items', generationId: g1.id, entity: { kind: 'USER', uid: u.uid, domainUid: u.domain }, container: `calendar:Default:${u.uid}` }),
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().detail).toMatch(/needs the items/);
    const none = await get(KEYS.admin, `/generations/${g1.id}/entities/${u.uid}/containers/${encodeURIComponent('calendar:Default:nobody')}/items`);
    expect(none.statusCode).toBe(404);
    // An administrator limited to a unit without sub-units that the user is not in sees neither the containers nor
    // the items.
    const leaves = (await f.sql<{ uid: string }>(
      `SELECT e.entry_uid AS uid FROM t_directory_ou o JOIN t_directory_entry e ON e.item_id = o.item_id
        WHERE NOT EXISTS (SELECT 1 FROM t_directory_ou k WHERE k.parent_item_id = o.item_id)`,
    )).map((r) => r.uid);
    const other = users.find((x) => x.domain === u.domain && x.ou && leaves.includes(x.ou) && x.ou !== u.ou)!;
    const key = 'key-restore-ou-containers';
    const scoped: Principal = {
      uid: 'ou-admin-c', login: `ouadmin@${u.domain}`, displayName: 'OU admin', email: `ouadmin@${u.domain}`,
      domainUid: u.domain, globalAdmin: false, roles: [], restoreOrgUnits: [other.ou!],
    };
    PRINCIPALS[key] = scoped;
    expect((await get(key, `/generations/${g1.id}/entities/${u.uid}/containers`)).statusCode).toBe(404);
    expect((await get(key, `/generations/${g1.id}/entities/${u.uid}/containers/${encodeURIComponent(`calendar:Default:${u.uid}`)}/items`)).statusCode).toBe(404);
    expect((await get(key, `/generations/${g1.id}/entities/${other.uid}/containers`)).statusCode).toBe(200);
  });
});
