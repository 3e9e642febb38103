import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../../server/cli/main.js';
import type { GenerationView } from '../../server/dataprotect/restore/generation-parts.js';
import { fixture, mailboxOverImap, type Fixture } from './fixture.js';

let f: Fixture;
let g1: GenerationView;

beforeAll(async () => {
  f = await fixture('cli', 6);
  g1 = await f.backup(new Date('2026-01-09T01:00:00Z'));
  process.env.DATABASE_URL = `postgres://${f.sb.db.user}@${f.sb.db.host}:${f.sb.db.port}/${f.sb.db.database}`;
});
afterAll(async () => {
  delete process.env.DATABASE_URL;
  await f?.close();
});

/** Runs the CLI in-process and returns its JSON lines. */
async function cli(...args: string[]): Promise<Record<string, any>[]> {
  const lines: string[] = [];
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: any) => (lines.push(String(chunk)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const argv = ['node', 'bm-dataprotect', ...args];
    await (await buildProgram(argv)).parseAsync(argv);
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  return lines.join('').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}

describe('bm-dataprotect entity', () => {
  it('lists a generation\'s users with --kind and --search, then restores a deleted folder with --op restore.mail.folder', async () => {
    const [u] = await f.sql<{ uid: string; login: string; domain: string; displayname: string }>(
      `SELECT e.entry_uid AS uid, u.login, c.uid AS domain, e.displayname FROM t_directory_entry e JOIN t_domain_user u ON u.item_id = e.item_id
         JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id WHERE e.kind = 'USER' ORDER BY e.entry_uid LIMIT 1`,
    );
    const users = await cli('entity', 'list', '--repo', f.repoDir, g1.id, '--kind', 'user', '--host-root', f.sb.root, '--json');
    const entities = users.filter((x) => x.type === 'entity');
    expect(entities.length).toBe(6);
    expect(entities.every((x) => x.kind === 'USER' && x.deleted === false)).toBe(true);
    const found = (await cli('entity', 'list', '--repo', f.repoDir, 'latest', '--search', u.login, '--host-root', f.sb.root, '--json')).filter((x) => x.type === 'entity');
    expect(found.map((x) => x.uid)).toEqual([u.uid]);

    const login = `${u.login}@${u.domain}`;
    let c = await f.imap(login);
    const before = await mailboxOverImap(c);
    await c.mailboxDelete('Projects/2026');
    await c.mailboxDelete('Projects');
    expect((await c.list()).some((x) => x.path.startsWith('Projects'))).toBe(false);
    await c.logout();

    const lines = await cli('entity', 'restore', '--repo', f.repoDir, g1.id, '--entity', u.uid, '--op', 'restore.mail.folder', '--folder', 'Projects', '--host-root', f.sb.root, '--json');
    const summary = lines.find((x) => x.type === 'summary')!;
    expect(summary).toMatchObject({ operation: 'restore.mail.folder', generation: g1.id, entity: u.uid });
    expect(summary.result.folders).toEqual(['Projects', 'Projects/2026']);
    c = await f.imap(login);
    const after = await mailboxOverImap(c);
    await c.logout();
    expect(after.get('Projects')).toEqual(before.get('Projects'));
    expect(after.get('Projects/2026')).toEqual(before.get('Projects/2026'));
  });

  it('restores a user into another account with --into LOGIN, and undeletes mail with --from/--to', async () => {
    const us = await f.sql<{ uid: string; login: string; domain: string }>(
      `SELECT e.entry_uid AS uid, u.login, c.uid AS domain FROM t_directory_entry e JOIN t_domain_user u ON u.item_id = e.item_id
         JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id WHERE e.kind = 'USER' ORDER BY c.uid, e.entry_uid`,
    );
    const [source, target] = us.filter((x) => x.domain === us[1].domain).slice(-2);
    const lines = await cli('entity', 'restore', '--repo', f.repoDir, g1.id, '--entity', source.uid, '--op', 'restore.into.account', '--into', target.login, '--host-root', f.sb.root, '--json');
    const summary = lines.find((x) => x.type === 'summary')!;
    expect(summary.result).toMatchObject({ target: target.uid, folder: `restored-2026-01-09-${source.login.replace(/\./g, '_')}` });
    expect(summary.result.messages).toBeGreaterThan(0);
    let c = await f.imap(`${target.login}@${target.domain}`);
    const inTarget = await mailboxOverImap(c);
    await c.logout();
    expect(inTarget.get(summary.result.folder)!.length).toBeGreaterThan(0);
    await expect(cli('entity', 'restore', '--repo', f.repoDir, g1.id, '--entity', source.uid, '--op', 'restore.into.account', '--into', 'nobody', '--host-root', f.sb.root)).rejects.toThrow(/no user nobody/);

    // One message of the source's INBOX deleted, then undeleted by date.
    c = await f.imap(`${source.login}@${source.domain}`);
    const lock = await c.getMailboxLock('INBOX');
    let gone: string;
    try {
      const first = await c.fetchOne('1', { envelope: true });
      gone = (first && first.envelope?.messageId) || '';
      expect(gone).not.toBe('');
      await c.messageDelete('1');
    } finally {
      lock.release();
    }
    await c.logout();
    const un = await cli('entity', 'restore', '--repo', f.repoDir, g1.id, '--entity', source.uid, '--op', 'undelete.mail', '--from', '2026-01-09', '--to', '2026-01-09', '--host-root', f.sb.root, '--json');
    const done = un.find((x) => x.type === 'summary')!;
    expect(done.result.messages).toBe(1);
    c = await f.imap(`${source.login}@${source.domain}`);
    const after = await mailboxOverImap(c);
    await c.logout();
    expect(after.get(done.result.folder)!.map((m) => m.messageId)).toEqual([gone]);
    await expect(cli('entity', 'restore', '--repo', f.repoDir, g1.id, '--entity', source.uid, '--op', 'undelete.mail', '--from', '2026-02-30', '--to', '2026-03-01', '--host-root', f.sb.root)).rejects.toThrow(/--from/);
  });

  it('refuses an unknown operation (usage) and an entity the generation does not hold', async () => {
    await expect(cli('entity', 'restore', '--repo', f.repoDir, g1.id, '--entity', 'x', '--op', 'replace.everything', '--host-root', f.sb.root)).rejects.toThrow(/expected one of/);
    await expect(cli('entity', 'restore', '--repo', f.repoDir, g1.id, '--entity', 'nobody', '--op', 'replace.calendars', '--host-root', f.sb.root)).rejects.toThrow(/not in generation/);
  });

  it('lists a user\'s saved containers and a calendar\'s items, then restores one deleted event with --op addmissing.items and one address book with --op replace.container', async () => {
    const [u] = await f.sql<{ uid: string }>(`SELECT entry_uid AS uid FROM t_directory_entry WHERE kind = 'USER' ORDER BY entry_uid OFFSET 1 LIMIT 1`);
    const cal = `calendar:Default:${u.uid}`;
    const book = `book:Contacts_${u.uid}`;
    const items = async (container: string) =>
      (await f.sql<{ uid: string; summary: string | null }>(
        `SELECT i.uid, (SELECT summary FROM t_calendar_vevent r WHERE r.item_id = i.id AND r.recurid_timestamp IS NULL LIMIT 1) AS summary
           FROM t_container_item i JOIN t_container c ON c.id = i.container_id WHERE c.uid = $1 ORDER BY i.uid`,
        [container],
      ));
    const events = await items(cal);
    const contacts = await items(book);
    const gone = events[0];
    await f.sql(`DELETE FROM t_container_item WHERE container_id = (SELECT id FROM t_container WHERE uid = $1) AND uid = $2`, [cal, gone.uid]);
    await f.sql(`DELETE FROM t_container WHERE uid = $1`, [book]);

    const common = ['--repo', f.repoDir, g1.id, '--entity', u.uid, '--host-root', f.sb.root, '--json'];
    const containers = (await cli('entity', 'containers', ...common)).filter((x) => x.type === 'container');
    expect(containers.map((c) => c.containerType).sort()).toEqual(expect.arrayContaining(['addressbook', 'calendar', 'notes', 'todolist', 'webappdata']));
    expect(containers.find((c) => c.uid === book)).toMatchObject({ exists: false, items: contacts.length });
    expect(containers.find((c) => c.uid === cal)).toMatchObject({ exists: true, items: events.length });
    const missing = (await cli('entity', 'items', ...common, '--container', cal, '--missing')).filter((x) => x.type === 'item');
    expect(missing).toEqual([expect.objectContaining({ uid: gone.uid, summary: gone.summary, exists: false })]);
    await expect(cli('entity', 'items', ...common, '--container', 'calendar:Default:nobody')).rejects.toThrow(/has no container/);

    const restored = await cli('entity', 'restore', ...common, '--op', 'addmissing.items', '--container', cal, '--item', gone.uid);
    expect(restored.find((x) => x.type === 'summary')!.result).toMatchObject({ container: cal, items: 1, skipped: 0 });
    expect(await items(cal)).toEqual(events);
    const whole = await cli('entity', 'restore', ...common, '--op', 'replace.container', '--container', book);
    expect(whole.find((x) => x.type === 'summary')!.result).toMatchObject({ container: book, items: contacts.length });
    expect(await items(book)).toEqual(contacts);
  });
});
