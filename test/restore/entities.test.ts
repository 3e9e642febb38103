import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import ICAL from 'ical.js';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerationView } from '../../server/dataprotect/restore/generation-parts.js';
import { forgetCatalogs, loadCatalog, loadEntityCatalog } from '../../server/dataprotect/restore/catalog.js';
import { smtpMailer } from '../../server/dataprotect/restore/mailer.js';
import { containerExport } from '../../server/sources/pgsql-manifest.js';
import { runRestore, validate } from '../../server/dataprotect/restore/operations/index.js';
import { hostLayout } from '../../server/host/reference/layout.js';
import { fixture, mailboxOverImap, recordingContext, type Fixture } from './fixture.js';

let f: Fixture;
let g1: GenerationView;
let users: { uid: string; login: string; domain: string; email: string }[];
let smtp: SMTPServer;
let smtpPort: number;
const received: ParsedMail[] = [];

beforeAll(async () => {
  f = await fixture('entities', 8);
  users = await f.sql(
    `SELECT e.entry_uid AS uid, u.login, c.uid AS domain, e.email FROM t_directory_entry e JOIN t_domain_user u ON u.item_id = e.item_id
       JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id WHERE e.kind = 'USER' ORDER BY e.entry_uid`,
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
});
afterAll(async () => {
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

async function containersOf(owner: string, type: string): Promise<string[]> {
  return (await f.sql<{ uid: string }>(`SELECT uid FROM t_container WHERE owner = $1 AND container_type = $2 ORDER BY uid`, [owner, type])).map((r) => r.uid);
}

async function stateOf(owner: string, types = ['calendar', 'addressbook', 'todolist', 'notes', 'webappdata']) {
  const out: Record<string, unknown> = {};
  for (const type of types) {
    for (const uid of await containersOf(owner, type)) {
      const [meta] = await f.sql(`SELECT uid, container_type, name, owner, defaultcontainer, domain_uid, created FROM t_container WHERE uid = $1`, [uid]);
      const acl = await f.sql(`SELECT subject, verb, position FROM t_container_acl a JOIN t_container c ON c.id = a.container_id WHERE c.uid = $1 ORDER BY 1, 2, 3`, [uid]);
      out[uid] = { meta, acl, items: await containerState(uid) };
    }
  }
  return out;
}

describe('calendars, address books, todolists', () => {
  it('replace.calendars / replace.books / replace.todolists make the containers equal item by item to the generation, recreating a deleted one', async () => {
    const u = users[0];
    const before = await stateOf(u.uid, ['calendar', 'addressbook', 'todolist']);
    expect(Object.keys(before).length).toBeGreaterThanOrEqual(4);
    // Damage: delete events, a whole address book, change todos, add an item.
    await f.sql(`DELETE FROM t_container_item WHERE container_id = (SELECT id FROM t_container WHERE uid = $1) AND uid IN (SELECT uid FROM t_container_item WHERE container_id = (SELECT id FROM t_container WHERE uid = $1) ORDER BY uid LIMIT 5)`, [`calendar:Default:${u.uid}`]);
    await f.sql(`DELETE FROM t_container WHERE uid = $1`, [`book:Contacts_${u.uid}`]);
    await f.sql(`UPDATE t_todolist_vtodo SET summary = 'changed', percent = 99 WHERE item_id IN (SELECT i.id FROM t_container_item i JOIN t_container c ON c.id = i.container_id WHERE c.uid = $1)`, [`todolist:default_${u.uid}`]);
    await f.sql(`INSERT INTO t_container_item (container_id, uid, displayname) SELECT id, 'added-after', 'Added' FROM t_container WHERE uid = $1`, [`calendar:Default:${u.uid}`]);
    expect(await stateOf(u.uid, ['calendar', 'addressbook', 'todolist'])).not.toEqual(before);

    for (const op of ['replace.calendars', 'replace.books', 'replace.todolists'] as const) {
      const p = await f.plan(g1, op, u.uid);
      await validate(f.env(), p);
      const r = await runRestore(f.env(), p, recordingContext().ctx);
      expect(r.items).toBeGreaterThan(0);
    }
    expect(await stateOf(u.uid, ['calendar', 'addressbook', 'todolist'])).toEqual(before);
  });

  it('replace.resources and replace.domain.books restore a resource calendar and the domain address book', async () => {
    const [res] = await f.sql<{ uid: string }>(`SELECT entry_uid AS uid FROM t_directory_entry WHERE kind = 'RESOURCE' ORDER BY entry_uid LIMIT 1`);
    const cal = `calendar:${res.uid}`;
    const book = `addressbook_${users[1].domain}`;
    const before = { cal: await containerState(cal), book: await containerState(book) };
    await f.sql(`DELETE FROM t_container_item WHERE container_id IN (SELECT id FROM t_container WHERE uid = ANY($1))`, [[cal, book]]);
    await runRestore(f.env(), await f.plan(g1, 'replace.resources', res.uid), recordingContext().ctx);
    const pb = await f.plan(g1, 'replace.domain.books', book);
    expect(pb.entry.kind).toBe('ADDRESSBOOK');
    await runRestore(f.env(), pb, recordingContext().ctx);
    expect({ cal: await containerState(cal), book: await containerState(book) }).toEqual(before);
  });

  it('send.calendars.ics / send.books.vcf / send.todolist.ics mail parsable exports to the user through a real SMTP server, and keep them for download', async () => {
    const u = users[2];
    const mailer = smtpMailer({ host: '127.0.0.1', port: smtpPort, requireTls: false });
    const files: { name: string; content: string }[] = [];
    for (const op of ['send.calendars.ics', 'send.books.vcf', 'send.todolist.ics'] as const) {
      const p = await f.plan(g1, op, u.uid);
      await validate(f.env(mailer), p);
      const rc = recordingContext();
      const r = await runRestore(f.env(mailer), p, rc.ctx);
      expect(r.recipient).toBe(u.email);
      files.push(...rc.files);
    }
    expect(received.length).toBe(3);
    for (const m of received) {
      expect(m.to && 'text' in m.to ? m.to.text : '').toContain(u.email);
      expect(m.from?.text).toBe(`no-reply@${u.domain}`);
      expect(m.attachments.length).toBeGreaterThan(0);
    }
    const all = received.flatMap((m) => m.attachments);
    const ics = all.filter((a) => a.filename?.endsWith('.ics'));
    const vcf = all.filter((a) => a.filename?.endsWith('.vcf'));
    const events = ics.flatMap((a) => new ICAL.Component(ICAL.parse(a.content.toString('utf8')) as unknown[]).getAllSubcomponents('vevent'));
    const todos = ics.flatMap((a) => new ICAL.Component(ICAL.parse(a.content.toString('utf8')) as unknown[]).getAllSubcomponents('vtodo'));
    const cards = vcf.flatMap((a) => {
      const parsed = ICAL.parse(a.content.toString('utf8')) as unknown[];
      return (Array.isArray(parsed[0]) ? parsed : [parsed]) as unknown[];
    });
    const count = async (type: string) =>
      Number((await f.sql<{ n: string }>(`SELECT count(*) AS n FROM t_container_item i JOIN t_container c ON c.id = i.container_id WHERE c.owner = $1 AND c.container_type = $2`, [u.uid, type]))[0].n);
    expect(cards.length).toBe(await count('addressbook'));
    expect(todos.length).toBe(await count('todolist'));
    expect(new Set(events.map((e) => e.getFirstPropertyValue('uid'))).size).toBe(await count('calendar'));
    // The same files are kept with the task.
    expect(files.map((x) => x.name).sort()).toEqual(all.map((a) => a.filename).sort());
  });
});

describe('directory', () => {
  it('complete.restore.user brings a deleted user back: directory entry, password, groups, mailbox, calendars, books, todolists, notes, web-app data', async () => {
    const u = users[3];
    const row = async () => (await f.sql(`SELECT login, password, routing, properties, archived FROM t_domain_user WHERE login = $1`, [u.login]))[0];
    const groups = async () => (await f.sql<{ name: string }>(`SELECT g.name FROM t_group_usermember m JOIN t_group g ON g.item_id = m.group_id JOIN t_directory_entry e ON e.item_id = m.user_id WHERE e.entry_uid = $1 ORDER BY 1`, [u.uid])).map((x) => x.name);
    const entry = async () => f.host.directory.entity(u.domain, u.uid);
    const before = { user: await row(), groups: await groups(), entry: await entry(), data: await stateOf(u.uid) };
    const c0 = await f.imap(`${u.login}@${u.domain}`);
    const mailBefore = await mailboxOverImap(c0);
    await c0.logout();
    expect(before.groups.length).toBeGreaterThan(0);
    expect(Object.keys(before.data)).toEqual(expect.arrayContaining([`notes:default_${u.uid}`, `webappdata:${u.uid}`]));

    // Delete the user as an administrator would: directory rows, containers, mailbox.
    await f.sql(`DELETE FROM t_container WHERE owner = $1`, [u.uid]);
    await f.sql(`DELETE FROM t_container_item WHERE uid = $1 AND container_id = (SELECT id FROM t_container WHERE uid = $2)`, [u.uid, u.domain]);
    const maildir = path.join(hostLayout(f.sb.root).spool, u.domain, u.login);
    await rm(maildir, { recursive: true, force: true });
    expect(await entry()).toBeNull();

    // A live user is not offered the operation; the deleted one is.
    await expect(validate(f.env(), await f.plan(g1, 'complete.restore.user', users[4].uid))).rejects.toThrow(/still exists/);
    const p = await f.plan(g1, 'complete.restore.user', u.uid);
    expect(p.entry.deleted).toBe(true);
    await validate(f.env(), p);
    // The user's directory rows come from the generation's users file, not from a copy of the whole dump: the
    // operation runs without ever asking the host for its database.
    expect(p.catalog.manifest.users?.map((x) => x.domainUid)).toContain(u.domain);
    const noScratch = Object.assign(Object.create(f.host) as typeof f.host, {
      databases: async () => { throw new Error('complete.restore.user asked for the database'); },
    });
    const r = await runRestore({ ...f.env(), host: noScratch }, p, recordingContext().ctx);
    expect(r.groups).toBe(before.groups.length);

    expect(await entry()).toEqual(before.entry);
    expect(await row()).toEqual(before.user);
    expect(await groups()).toEqual(before.groups);
    expect(await stateOf(u.uid)).toEqual(before.data);
    const c = await f.imap(`${u.login}@${u.domain}`);
    const mailAfter = await mailboxOverImap(c);
    await c.logout();
    expect(mailAfter).toEqual(mailBefore);
  });

  it('replace.ou renames an organisational unit back, and recreates a deleted one', async () => {
    const ous = await f.sql<{ uid: string; name: string; id: string }>(
      `SELECT e.entry_uid AS uid, o.name, o.item_id::text AS id FROM t_directory_ou o JOIN t_directory_entry e ON e.item_id = o.item_id
        WHERE o.parent_item_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM t_directory_ou k WHERE k.parent_item_id = o.item_id) ORDER BY e.entry_uid LIMIT 2`,
    );
    const [a, b] = ous;
    await f.sql(`UPDATE t_directory_ou SET name = 'Renamed' WHERE item_id = $1`, [a.id]);
    await f.sql(`DELETE FROM t_container_item WHERE id = $1`, [b.id]);
    const ra = await runRestore(f.env(), await f.plan(g1, 'replace.ou', a.uid), recordingContext().ctx);
    const rb = await runRestore(f.env(), await f.plan(g1, 'replace.ou', b.uid), recordingContext().ctx);
    expect(ra.outcome).toBe('renamed');
    expect(rb.outcome).toBe('recreated');
    const now = await f.sql<{ uid: string; name: string }>(`SELECT e.entry_uid AS uid, o.name FROM t_directory_ou o JOIN t_directory_entry e ON e.item_id = o.item_id WHERE e.entry_uid = ANY($1) ORDER BY 1`, [[a.uid, b.uid]]);
    expect(now).toEqual([{ uid: a.uid, name: a.name }, { uid: b.uid, name: b.name }].sort((x, y) => (x.uid < y.uid ? -1 : 1)));
  });

  it('restore.filehosting puts a domain\'s file-hosting data back and touches no other domain', async () => {
    const layout = hostLayout(f.sb.root);
    const domains = (await readdir(layout.filehosting)).sort();
    const hashTree = async (dir: string): Promise<Record<string, string>> => {
      const out: Record<string, string> = {};
      if (!existsSync(dir)) return out;
      for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
        if (!e.isFile()) continue;
        const p = path.join(e.parentPath, e.name);
        out[path.relative(dir, p)] = createHash('sha256').update(await readFile(p)).digest('hex');
      }
      return out;
    };
    const target = domains[0];
    const other = domains.find((d) => d !== target);
    const before = await hashTree(path.join(layout.filehosting, target));
    expect(Object.keys(before).length).toBeGreaterThan(0);
    await rm(path.join(layout.filehosting, target), { recursive: true });
    if (other) await writeFile(path.join(layout.filehosting, other, 'added-later.bin'), 'x');
    const otherBefore = other ? await hashTree(path.join(layout.filehosting, other)) : {};
    await runRestore(f.env(), await f.plan(g1, 'restore.filehosting', target), recordingContext().ctx);
    expect(await hashTree(path.join(layout.filehosting, target))).toEqual(before);
    if (other) expect(await hashTree(path.join(layout.filehosting, other))).toEqual(otherBefore);
  });
});

describe('catalog', () => {
  it('of one entity holds the very entry the whole catalog holds, deleted or not, and nothing for an unknown uid', async () => {
    // The last test of the file: the user's directory rows go for good (deleted as an administrator would).
    const victim = users[users.length - 1];
    const domainCal = (await f.sql<{ uid: string }>(`SELECT c.uid FROM t_container c WHERE c.owner = c.domain_uid AND c.container_type = 'calendar' LIMIT 1`))[0];
    await f.sql(`DELETE FROM t_container_item WHERE id = (SELECT item_id FROM t_directory_entry WHERE entry_uid = $1)`, [victim.uid]);
    forgetCatalogs();
    const all = await loadCatalog(f.repo, f.host, g1);
    expect(all.byUid.get(victim.uid)!.deleted).toBe(true);
    const kinds = new Set<string>();
    for (const entry of all.entries) {
      const one = await loadEntityCatalog(f.repo, f.host, g1, entry.uid);
      expect(one.entries).toEqual([entry]);
      expect(one.byUid.get(entry.uid)).toEqual(entry);
      expect(one.manifest.users).toEqual(all.manifest.users);
      // Its containers' exports, derived from the rows the one-entity manifest still locates.
      for (const c of entry.containers) {
        const lines = async (catalog: typeof all) => {
          const out: string[] = [];
          for await (const l of containerExport(f.repo, catalog.database, catalog.manifest, c, f.host.entityData)) out.push(l);
          return out;
        };
        const want = await lines(all);
        expect(want.length).toBeGreaterThan(0);
        expect(await lines(one)).toEqual(want);
      }
      kinds.add(`${entry.kind}${entry.deleted ? ' deleted' : ''}${entry.orgUnitPath?.length ? ' in a unit' : ''}`);
    }
    expect([...kinds]).toEqual(expect.arrayContaining(['DOMAIN', 'CALENDAR', 'ADDRESSBOOK', 'USER deleted in a unit', 'USER in a unit', 'OU in a unit', 'MAILSHARE in a unit']));
    expect(all.byUid.get(domainCal.uid)!.kind).toBe('CALENDAR');
    expect((await loadEntityCatalog(f.repo, f.host, g1, 'no-such-uid')).entries).toEqual([]);
  });
});
