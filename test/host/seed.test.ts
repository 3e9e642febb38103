import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../../server/pg/client.js';
import { hostLayout } from '../../server/host/reference/layout.js';
import { seedReference, type SeedSummary } from '../../server/host/reference/seed.js';
import { sandbox, type Sandbox } from './helpers.js';

let sb: Sandbox;
let summary: SeedSummary;

beforeAll(async () => {
  sb = await sandbox('seed');
  summary = await seedReference({ connection: sb.db, root: sb.root, users: 200 });
});
afterAll(async () => sb?.cleanup());

describe('host seed', () => {
  it('seeds 200 users across two domains', async () => {
    // Well under a minute on a quiet machine; the bound is loose, since other processes on the machine stretch it.
    console.log(`seeded 200 users in ${(summary.ms / 1000).toFixed(1)} s`);
    expect(summary.ms).toBeLessThan(300_000);
    expect(summary.users).toBe(200);
    expect(summary.domains).toBe(2);
    const perDomain = await withClient(sb.db, async (c) =>
      (await c.query(`SELECT c.uid, count(*)::int AS n FROM t_domain_user u JOIN t_container_item i ON i.id = u.item_id
                      JOIN t_container c ON c.id = i.container_id GROUP BY c.uid ORDER BY c.uid`)).rows);
    expect(perDomain).toEqual([{ uid: 'acme.lan', n: 134 }, { uid: 'globex.lan', n: 66 }]);
    console.log(`seeded 200 users in ${summary.ms} ms: ${JSON.stringify(summary)}`);
  });

  it('follows BlueMind container uid conventions for every user', async () => {
    const missing = await withClient(sb.db, async (c) =>
      (await c.query(`SELECT e.entry_uid FROM t_directory_entry e WHERE e.kind = 'USER' AND (
          SELECT count(*) FROM t_container c WHERE c.owner = e.entry_uid AND c.uid IN ('calendar:Default:' || e.entry_uid,
            'book:Contacts_' || e.entry_uid, 'todolist:default_' || e.entry_uid, 'book:CollectedContacts_' || e.entry_uid,
            'mailbox:acls-' || e.entry_uid)) <> 5`)).rows);
    expect(missing).toEqual([]);
  });

  it('has single and recurring events, exceptions, contact groups, todolists, OUs, mailshares and resources', async () => {
    const q = (sql: string) => withClient(sb.db, async (c) => Number((await c.query(sql)).rows[0].n));
    expect(await q(`SELECT count(*) n FROM t_calendar_vevent WHERE rrule_frequency IS NULL AND recurid_timestamp IS NULL`)).toBeGreaterThan(1000);
    expect(await q(`SELECT count(*) n FROM t_calendar_vevent WHERE rrule_frequency IS NOT NULL`)).toBeGreaterThan(300);
    expect(await q(`SELECT count(*) n FROM t_calendar_vevent WHERE recurid_timestamp IS NOT NULL`)).toBeGreaterThan(50);
    expect(await q(`SELECT count(*) n FROM t_addressbook_vcard WHERE kind = 'group' AND cardinality(member_item_uid) >= 2`)).toBe(200);
    expect(await q(`SELECT count(*) n FROM t_todolist_vtodo`)).toBe(800);
    expect(await q(`SELECT count(*) n FROM t_directory_entry WHERE kind = 'ORG_UNIT'`)).toBe(10);
    expect(await q(`SELECT count(*) n FROM t_directory_entry WHERE kind = 'MAILSHARE'`)).toBe(4);
    expect(await q(`SELECT count(*) n FROM t_directory_entry WHERE kind = 'RESOURCE'`)).toBe(4);
    expect(await q(`SELECT count(*) n FROM t_container WHERE uid LIKE 'calendar:%' AND owner IN (SELECT entry_uid FROM t_directory_entry WHERE kind='RESOURCE')`)).toBe(4);
    expect(await q(`SELECT count(*) n FROM t_directory_entry WHERE flag_archived`)).toBe(7);
  });

  it('writes Maildir folders with flagged messages, attachments and mtimes as internal dates', async () => {
    const layout = hostLayout(sb.root);
    const domains = await readdir(layout.spool);
    expect(domains.sort()).toEqual(['acme.lan', 'globex.lan']);
    const mailboxes = await readdir(path.join(layout.spool, 'acme.lan'));
    expect(mailboxes).toContain('contact');
    const box = path.join(layout.spool, 'acme.lan', mailboxes.find((m) => m !== 'contact' && m !== 'support')!);
    const entries = await readdir(box);
    expect(entries).toEqual(expect.arrayContaining(['cur', 'new', 'tmp', '.Sent', '.Trash', '.Archive', '.Projects', '.Projects.2026']));
    const cur = await readdir(path.join(box, 'cur'));
    expect(cur.length).toBeGreaterThan(0);
    const file = path.join(box, 'cur', cur[0]);
    expect(cur[0]).toMatch(/,S=\d+:2,[A-Z]*$/);
    const raw = await readFile(file, 'latin1');
    expect(raw).toMatch(/^Return-Path: /);
    expect(Number(/,S=(\d+)/.exec(cur[0])![1])).toBe((await stat(file)).size);
    const date = new Date(/\r\nDate: ([^\r]+)/.exec(raw)![1]);
    expect(Math.abs((await stat(file)).mtimeMs - date.getTime())).toBeLessThan(1000);
    expect(summary.messages).toBe(204 * 10);
    expect((await readdir(layout.archive)).length).toBeGreaterThan(0);
    expect((await readdir(layout.filehosting)).length).toBeGreaterThan(0);
    expect(await readFile(path.join(layout.conf('bm-master'), 'etc/bm/bm.ini'), 'utf8')).toContain(`db = ${sb.db.database}`);
  });

  it('is deterministic: the same seed gives the same rows', async () => {
    const dump = () => withClient(sb.db, async (c) =>
      (await c.query(`SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) h FROM (
         SELECT i.uid, i.displayname, i.created, v.summary, v.dtstart_timestamp, v.rrule_frequency, v.att_mailto
         FROM t_calendar_vevent v JOIN t_container_item i ON i.id = v.item_id) t`)).rows[0].h as string);
    const before = await dump();
    await seedReference({ connection: sb.db, root: sb.root, users: 200 });
    expect(await dump()).toBe(before);
  });

  it('refuses to seed a database it did not create', async () => {
    const other = sb.extraDb('foreign');
    await withClient({ ...other, database: 'postgres' }, (c) => c.query(`CREATE DATABASE "${other.database}"`));
    await withClient(other, (c) => c.query('CREATE TABLE precious (id int)'));
    await expect(seedReference({ connection: other, root: sb.root, users: 1 })).rejects.toThrow(/refusing to seed/);
    expect(await withClient(other, async (c) => (await c.query(`SELECT to_regclass('precious') r`)).rows[0].r)).toBe('precious');
  });
});
