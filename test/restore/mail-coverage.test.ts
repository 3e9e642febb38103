// Archived mail restored with its mailbox, a user's data restored into another account, and mail undeleted by
// date: against a seeded reference host (PostgreSQL, Dovecot over IMAP) and generations made by the nightly run.

import { existsSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerationView } from '../../server/dataprotect/restore/generation-parts.js';
import { ARCHIVE_FOLDER, ARCHIVE_IMAP_FOLDER } from '../../server/dataprotect/restore/mailbox-reader.js';
import { restoredFolderName, restoredIntoFolderName, runRestore, validate } from '../../server/dataprotect/restore/operations/index.js';
import { openSavedMailbox } from '../../server/dataprotect/restore/operations/mail.js';
import { hostLayout } from '../../server/host/reference/layout.js';
import { fixture, mailboxOverImap, recordingContext, type Fixture, type ImapMessage } from './fixture.js';

interface User { uid: string; login: string; domain: string }

let f: Fixture;
let g1: GenerationView;
let g2: GenerationView;
let users: User[];
/** A user whose mailbox has archived mail. */
let archUser: User;
/** The undelete user's mailbox at g1 and at g2, and the message delivered between them. */
let atG1: Map<string, ImapMessage[]>;
let atG2: Map<string, ImapMessage[]>;
const DELIVERED_ID = '<delivered-between-generations@acme.test>';

const T1 = new Date('2026-01-05T01:00:00Z');
const T2 = new Date('2026-01-06T01:00:00Z');

const imapLogin = (u: User) => `${u.login}@${u.domain}`;

async function overImap(u: User): Promise<Map<string, ImapMessage[]>> {
  const c = await f.imap(imapLogin(u));
  try {
    return await mailboxOverImap(c);
  } finally {
    await c.logout();
  }
}

function archiveDir(u: User): string {
  return path.join(hostLayout(f.sb.root).archive, 'user', u.domain, u.uid);
}

async function archiveFiles(u: User): Promise<Map<string, { content: string; mtime: number }>> {
  const out = new Map<string, { content: string; mtime: number }>();
  if (!existsSync(archiveDir(u))) return out;
  for (const name of (await readdir(archiveDir(u))).sort()) {
    const file = path.join(archiveDir(u), name);
    out.set(name, { content: await readFile(file, 'utf8'), mtime: Math.floor((await stat(file)).mtimeMs / 1000) });
  }
  return out;
}

beforeAll(async () => {
  f = await fixture('mailcov', 12);
  users = await f.sql<User>(
    `SELECT e.entry_uid AS uid, u.login, c.uid AS domain FROM t_directory_entry e JOIN t_domain_user u ON u.item_id = e.item_id
       JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id WHERE e.kind = 'USER' ORDER BY e.entry_uid`,
  );
  const withArchive = users.filter((u) => existsSync(archiveDir(u)));
  expect(withArchive.length).toBeGreaterThan(0);
  archUser = withArchive[0];

  g1 = await f.backup(T1, { archivedEmails: true });
  // Between the two generations the undelete user receives a message and deletes the first of INBOX.
  const u = undeleteUser();
  atG1 = await overImap(u);
  const c = await f.imap(imapLogin(u));
  try {
    const raw = Buffer.from(`Message-ID: ${DELIVERED_ID}\r\nFrom: <a@acme.test>\r\nTo: <${imapLogin(u)}>\r\nSubject: Delivered after the first generation\r\nDate: Mon, 05 Jan 2026 09:00:00 +0000\r\n\r\nHello.\r\n`);
    await c.append('INBOX', raw, ['\\Seen', '\\Flagged'], new Date('2026-01-05T09:00:00Z'));
    const lock = await c.getMailboxLock('INBOX');
    try {
      await c.messageDelete('1', {});
    } finally {
      lock.release();
    }
  } finally {
    await c.logout();
  }
  atG2 = await overImap(u);
  g2 = await f.backup(T2, { archivedEmails: true });
}, 300_000);
afterAll(async () => {
  await f?.close();
});

/** Distinct users for each test: archive, into-account source and target, undelete. */
function undeleteUser(): User {
  return users.filter((u) => u.uid !== archUser.uid).at(-1)!;
}

describe('archived mail', () => {
  it('a saved mailbox lists its archived mail as one more folder, read from the mail/archive part', async () => {
    const p = await f.plan(g1, 'replace.mailbox', archUser.uid);
    const { box } = await openSavedMailbox(f.env(), g1, p.entry.entity);
    const summary = await box.summary();
    const live = await archiveFiles(archUser);
    expect(summary.at(-1)).toMatchObject({ path: ARCHIVE_FOLDER, archived: true, messages: live.size });
    const msgs = await box.messages(await box.folder(ARCHIVE_FOLDER));
    expect(msgs.map((m) => m.id).sort()).toEqual([...live.keys()]);
    expect((await box.content(msgs[0])).toString('utf8')).toBe(live.get(msgs[0].id)!.content);
  });

  it('replace.mailbox brings the archive back as it was (files, contents, dates) with the mailbox', async () => {
    const before = await archiveFiles(archUser);
    const mailBefore = await overImap(archUser);
    await rm(archiveDir(archUser), { recursive: true, force: true });
    const c = await f.imap(imapLogin(archUser));
    await c.mailboxDelete('Projects/2026');
    await c.logout();

    const p = await f.plan(g1, 'replace.mailbox', archUser.uid);
    await validate(f.env(), p);
    const r = await runRestore(f.env(), p, recordingContext().ctx);
    expect(r.archivedMessages).toBe(before.size);
    expect(await archiveFiles(archUser)).toEqual(before);
    expect(await overImap(archUser)).toEqual(mailBefore);
  });

  it('restore.mail.messages of the archive puts a lost archived message back, and a second run writes nothing', async () => {
    const before = await archiveFiles(archUser);
    const [lost] = [...before.keys()];
    await rm(path.join(archiveDir(archUser), lost));
    const p = await f.plan(g1, 'restore.mail.messages', archUser.uid, { folder: ARCHIVE_FOLDER, messageIds: [lost] });
    await validate(f.env(), p);
    expect(await runRestore(f.env(), p, recordingContext().ctx)).toMatchObject({ messages: 1, alreadyPresent: 0 });
    expect(await archiveFiles(archUser)).toEqual(before);
    const again = await runRestore(f.env(), await f.plan(g1, 'restore.mail.folder', archUser.uid, { folder: ARCHIVE_FOLDER }), recordingContext().ctx);
    expect(again).toMatchObject({ messages: 0, alreadyPresent: before.size });
  });

  it('subfolder.mailbox appends the archived messages under restored-<date>/Archived mail, over IMAP', async () => {
    const p = await f.plan(g1, 'subfolder.mailbox', archUser.uid);
    await runRestore(f.env(), p, recordingContext().ctx);
    const now = await overImap(archUser);
    const folder = now.get(`${restoredFolderName(g1.time)}/${ARCHIVE_IMAP_FOLDER}`);
    const files = await archiveFiles(archUser);
    expect(folder).toHaveLength(files.size);
    expect(folder!.every((m) => m.subject.startsWith('Archived: '))).toBe(true);
    // Internal dates are the archive files' dates.
    expect(folder!.map((m) => m.internalDate / 1000).sort()).toEqual([...files.values()].map((x) => x.mtime).sort());
  });

  it('complete.restore.user brings a deleted user back with their archived mail', async () => {
    const before = await archiveFiles(archUser);
    await f.sql(`DELETE FROM t_container WHERE owner = $1`, [archUser.uid]);
    await f.sql(`DELETE FROM t_container_item WHERE uid = $1 AND container_id = (SELECT id FROM t_container WHERE uid = $2)`, [archUser.uid, archUser.domain]);
    await rm(path.join(hostLayout(f.sb.root).spool, archUser.domain, archUser.login), { recursive: true, force: true });
    await rm(archiveDir(archUser), { recursive: true, force: true });
    const p = await f.plan(g1, 'complete.restore.user', archUser.uid);
    expect(p.entry.deleted).toBe(true);
    await validate(f.env(), p);
    const r = await runRestore(f.env(), p, recordingContext().ctx);
    expect(r['replace.mailbox']).toMatchObject({ archivedMessages: before.size });
    expect(await archiveFiles(archUser)).toEqual(before);
  });
});

describe('archived mail into another account', () => {
  it('restore.into.account brings the archived mail under restored-<date>-<login>/Archived mail', async () => {
    const target = users.find((u) => u.domain === archUser.domain && u.uid !== archUser.uid && u.uid !== undeleteUser().uid)!;
    const files = await archiveFiles(archUser);
    const into = (await f.host.directory.entity(target.domain, target.uid))!;
    await runRestore(f.env(), await f.plan(g1, 'restore.into.account', archUser.uid, { into }), recordingContext().ctx);
    const now = await overImap(target);
    const archived = now.get(`${restoredIntoFolderName(g1.time, archUser.login)}/${ARCHIVE_IMAP_FOLDER}`)!;
    expect(archived.map((m) => m.internalDate / 1000).sort()).toEqual([...files.values()].map((x) => x.mtime).sort());
  });
});

describe('restore into another account', () => {
  const pair = () => {
    // Users without archived mail: their restored folders hold exactly their IMAP folders.
    const others = users.filter((u) => u.uid !== undeleteUser().uid && !existsSync(archiveDir(u)));
    const source = others[0];
    const target = others.find((u) => u.domain === source.domain && u.uid !== source.uid)!;
    return { source, target };
  };
  const containersOf = (owner: string) =>
    f.sql<{ uid: string; name: string; type: string; items: string[] }>(
      `SELECT c.uid, c.name, c.container_type AS type, COALESCE((SELECT array_agg(i.uid ORDER BY i.uid) FROM t_container_item i WHERE i.container_id = c.id), '{}') AS items
         FROM t_container c WHERE c.owner = $1 AND c.container_type IN ('calendar', 'addressbook', 'todolist') ORDER BY c.uid`,
      [owner],
    );

  it("puts the user's mail under restored-<date>-<login>/ and their calendars, address books and task lists as new containers of the target", async () => {
    const { source, target } = pair();
    const sourceMail = await overImap(source);
    const sourceContainers = await containersOf(source.uid);
    const targetBefore = await containersOf(target.uid);
    expect(sourceContainers.length).toBeGreaterThan(0);

    const into = (await f.host.directory.entity(target.domain, target.uid))!;
    const p = await f.plan(g1, 'restore.into.account', source.uid, { into });
    await validate(f.env(), p);
    const r = await runRestore(f.env(), p, recordingContext().ctx);
    const total = [...sourceMail.values()].reduce((n, x) => n + x.length, 0);
    expect(r).toMatchObject({ messages: total, alreadyPresent: 0, target: target.uid });

    // Over IMAP: every folder of the source under the restored folder, messages with flags and internal dates.
    const base = restoredIntoFolderName(g1.time, source.login);
    expect(base).toBe(`restored-2026-01-05-${source.login.replace(/\./g, '_')}`);
    const now = await overImap(target);
    for (const [folder, msgs] of sourceMail) {
      const at = folder === 'INBOX' ? base : `${base}/${folder}`;
      expect(now.get(at), at).toEqual(msgs);
    }
    // In the database: one new container per saved one, owned by the target, with the same items; the source untouched.
    const targetAfter = await containersOf(target.uid);
    const copies = targetAfter.filter((c) => !targetBefore.some((b) => b.uid === c.uid));
    expect(copies).toHaveLength(sourceContainers.length);
    for (const s of sourceContainers) {
      const copy = copies.find((c) => c.uid === `${s.uid}:restored:2026-01-05:${target.uid}`)!;
      expect(copy, s.uid).toBeDefined();
      expect(copy).toMatchObject({ type: s.type, items: s.items, name: `${s.name} (${source.login}, 2026-01-05)` });
    }
    const acl = await f.sql<{ subject: string; verb: string }>(
      `SELECT a.subject, a.verb FROM t_container_acl a JOIN t_container c ON c.id = a.container_id WHERE c.uid = $1`, [copies[0].uid],
    );
    expect(acl).toEqual([{ subject: target.uid, verb: 'All' }]);
    expect(await containersOf(source.uid)).toEqual(sourceContainers);
    expect(await overImap(source)).toEqual(sourceMail);

    // Run twice: no message twice, the copies replaced rather than doubled.
    const again = await runRestore(f.env(), p, recordingContext().ctx);
    expect(again).toMatchObject({ messages: 0, alreadyPresent: total });
    expect(await overImap(target)).toEqual(now);
    expect(await containersOf(target.uid)).toEqual(targetAfter);
  });

  it("puts a deleted user's mail and contacts into a successor's account", async () => {
    const { source: successorSource, target } = pair();
    const departed = users.find((u) => u.domain === target.domain && !existsSync(archiveDir(u)) && ![undeleteUser().uid, successorSource.uid, target.uid].includes(u.uid))!;
    expect(departed).toBeDefined();
    const mail = await overImap(departed);
    const containers = await containersOf(departed.uid);
    // The user leaves: directory entry, containers and mailbox deleted.
    await f.sql(`DELETE FROM t_container WHERE owner = $1`, [departed.uid]);
    await f.sql(`DELETE FROM t_container_item WHERE uid = $1 AND container_id = (SELECT id FROM t_container WHERE uid = $2)`, [departed.uid, departed.domain]);
    await rm(path.join(hostLayout(f.sb.root).spool, departed.domain, departed.login), { recursive: true, force: true });

    const into = (await f.host.directory.entity(target.domain, target.uid))!;
    const p = await f.plan(g1, 'restore.into.account', departed.uid, { into });
    expect(p.entry.deleted).toBe(true);
    await validate(f.env(), p);
    await runRestore(f.env(), p, recordingContext().ctx);
    const now = await overImap(target);
    const base = restoredIntoFolderName(g1.time, departed.login);
    for (const [folder, msgs] of mail) expect(now.get(folder === 'INBOX' ? base : `${base}/${folder}`), folder).toEqual(msgs);
    const copies = (await containersOf(target.uid)).filter((c) => c.uid.includes(`:restored:2026-01-05:${target.uid}`) && containers.some((x) => c.uid.startsWith(x.uid)));
    expect(copies.map((c) => c.items)).toEqual(containers.map((c) => c.items));
  });

  it('refuses the user itself as the target, and a missing target', async () => {
    const { source } = pair();
    const self = (await f.host.directory.entity(source.domain, source.uid))!;
    await expect(validate(f.env(), await f.plan(g1, 'restore.into.account', source.uid, { into: self }))).rejects.toThrow(/choose another account/);
    await expect(validate(f.env(), await f.plan(g1, 'restore.into.account', source.uid))).rejects.toThrow(/targetUid/);
  });
});

describe('undelete by date', () => {
  it('brings back, once and with their flags, the messages of the period the live mailbox no longer holds', async () => {
    const u = undeleteUser();
    // After the second generation the delivered message and one of Sent are deleted too.
    const sentVictim = atG2.get('Sent')![0];
    const c = await f.imap(imapLogin(u));
    try {
      for (const [folder, id] of [['INBOX', DELIVERED_ID], ['Sent', sentVictim.messageId]]) {
        const lock = await c.getMailboxLock(folder);
        try {
          const found = (await c.search({ header: { 'message-id': id } }, { uid: true })) as number[];
          expect(found).toHaveLength(1);
          await c.messageDelete(found.join(','), { uid: true });
        } finally {
          lock.release();
        }
      }
    } finally {
      await c.logout();
    }
    const live = await overImap(u);
    const deletedBeforeG2 = atG1.get('INBOX')!.filter((m) => !atG2.get('INBOX')!.some((x) => x.messageId === m.messageId));
    expect(deletedBeforeG2).toHaveLength(1);
    const delivered = atG2.get('INBOX')!.find((m) => m.messageId === DELIVERED_ID)!;
    expect(delivered.flags).toEqual(['\\Flagged', '\\Seen']);

    const p = await f.plan(g2, 'undelete.mail', u.uid, { from: new Date('2026-01-05T00:00:00Z'), to: new Date('2026-01-06T23:59:59Z') });
    await validate(f.env(), p);
    const r = await runRestore(f.env(), p, recordingContext().ctx);
    expect(r.generations).toEqual([g2.id, g1.id]);
    expect(r.messages).toBe(3);

    // restored-<date of the run> (read from the result: the run may cross midnight).
    const base = r.folder as string;
    expect(base).toMatch(/^restored-\d{4}-\d{2}-\d{2}$/);
    const now = await overImap(u);
    expect(now.get(base)!.map((m) => m.messageId).sort()).toEqual([DELIVERED_ID, deletedBeforeG2[0].messageId].sort());
    expect(now.get(base)!.find((m) => m.messageId === DELIVERED_ID)).toEqual(delivered);
    expect(now.get(base)!.find((m) => m.messageId === deletedBeforeG2[0].messageId)).toEqual(deletedBeforeG2[0]);
    expect(now.get(`${base}/Sent`)).toEqual([sentVictim]);
    // The live folders are as they were: nothing still there was appended again.
    for (const [folder, msgs] of live) expect(now.get(folder), folder).toEqual(msgs);
    expect([...now.keys()].filter((k) => k.startsWith(base)).sort()).toEqual([base, `${base}/Sent`]);

    // A second run finds every message live.
    const again = await runRestore(f.env(), p, recordingContext().ctx);
    expect(again.messages).toBe(0);
    expect(await overImap(u)).toEqual(now);
  });

  it('reads only the generations of the period, and refuses a period without any', async () => {
    const u = undeleteUser();
    const p = await f.plan(g2, 'undelete.mail', u.uid, { from: new Date('2026-01-06T00:00:00Z'), to: new Date('2026-01-06T23:59:59Z') });
    const r = await runRestore(f.env(), p, recordingContext().ctx);
    expect(r.generations).toEqual([g2.id]);
    const empty = await f.plan(g2, 'undelete.mail', u.uid, { from: new Date('2025-01-01T00:00:00Z'), to: new Date('2025-01-31T00:00:00Z') });
    await expect(validate(f.env(), empty)).rejects.toThrow(/no generation with mail was taken between/);
    const reversed = await f.plan(g2, 'undelete.mail', u.uid, { from: new Date('2026-01-06T00:00:00Z'), to: new Date('2026-01-05T00:00:00Z') });
    await expect(validate(f.env(), reversed)).rejects.toThrow(/swap from and to/);
  });
});
