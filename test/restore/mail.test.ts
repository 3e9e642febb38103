import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerationView } from '../../server/dataprotect/restore/generation-parts.js';
import { SavedMailbox } from '../../server/dataprotect/restore/mailbox-reader.js';
import { runRestore, validate } from '../../server/dataprotect/restore/operations/index.js';
import { partSnapshot } from '../../server/dataprotect/restore/generation-parts.js';
import { fixture, mailboxOverImap, recordingContext, type Fixture, type ImapMessage } from './fixture.js';

let f: Fixture;
let g1: GenerationView;
let user: { uid: string; login: string };
let saved: Map<string, ImapMessage[]>;

const GEN_TIME = new Date('2026-01-06T01:00:00Z');

beforeAll(async () => {
  f = await fixture('mail', 6);
  const [u] = await f.sql<{ uid: string; login: string }>(
    `SELECT e.entry_uid AS uid, u.login || '@' || c.uid AS login FROM t_directory_entry e JOIN t_domain_user u ON u.item_id = e.item_id
       JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id WHERE e.kind = 'USER' ORDER BY e.entry_uid LIMIT 1`,
  );
  user = u;
  const c = await f.imap(user.login);
  saved = await mailboxOverImap(c);
  await c.logout();
  g1 = await f.backup(GEN_TIME);
});
afterAll(async () => {
  await f?.close();
});

/** Deletes half of INBOX, the folder Projects/2026, and the flags of the rest of INBOX, over IMAP. */
async function damage(): Promise<void> {
  const c = await f.imap(user.login);
  try {
    const lock = await c.getMailboxLock('INBOX');
    try {
      const uids = (await c.search({ all: true }, { uid: true })) as number[];
      const half = uids.slice(0, Math.ceil(uids.length / 2));
      await c.messageDelete(half.join(','), { uid: true });
      const rest = uids.slice(half.length);
      if (rest.length) await c.messageFlagsRemove(rest.join(','), ['\\Seen', '\\Flagged', '\\Answered'], { uid: true });
    } finally {
      lock.release();
    }
    await c.mailboxDelete('Projects/2026');
  } finally {
    await c.logout();
  }
}

function strip(ms: ImapMessage[] | undefined) {
  return (ms ?? []).map(({ messageId, flags, internalDate, size }) => ({ messageId, flags, internalDate, size }));
}

describe('mail restores', () => {
  it('lists the saved folders and messages of a mailbox (subject, sender, date, size) without restoring anything', async () => {
    const p = await f.plan(g1, 'subfolder.mailbox', user.uid);
    const loc = (await f.host.mailboxLocation(p.entry.entity))!;
    const box = new SavedMailbox(f.repo, partSnapshot(g1, 'mail/imap')!, loc.partPath);
    const folders = await box.summary();
    expect(folders.map((x) => x.path).sort()).toEqual([...saved.keys()].sort());
    for (const x of folders) expect(x.messages).toBe(saved.get(x.path)!.length);
    const inbox = await box.messages(await box.folder('INBOX'));
    expect(inbox.map((m) => m.flags.slice().sort())).toEqual(expect.arrayContaining(saved.get('INBOX')!.map((m) => m.flags)));
    expect(inbox.map((m) => m.internalDate.getTime()).sort()).toEqual(saved.get('INBOX')!.map((m) => m.internalDate).sort());
  });

  it('subfolder.mailbox brings deleted messages, folders and flags back under restored-<date> with their flags and internal dates, over IMAP', async () => {
    await damage();
    const p = await f.plan(g1, 'subfolder.mailbox', user.uid);
    await validate(f.env(), p);
    const { ctx, progress } = recordingContext();
    const result = await runRestore(f.env(), p, ctx);
    const total = [...saved.values()].reduce((n, x) => n + x.length, 0);
    expect(result.messages).toBe(total);
    expect(progress.at(-1)).toMatchObject({ done: total, total });

    const c = await f.imap(user.login);
    const now = await mailboxOverImap(c);
    await c.logout();
    const base = 'restored-2026-01-06';
    for (const [folder, msgs] of saved) {
      const target = folder === 'INBOX' ? base : `${base}/${folder}`;
      expect(strip(now.get(target)), target).toEqual(strip(msgs));
    }
    // The live folders are as the damage left them (a subfolder restore replaces nothing).
    expect(now.has('Projects/2026')).toBe(false);
    expect(now.get('INBOX')!.length).toBe(saved.get('INBOX')!.length - Math.ceil(saved.get('INBOX')!.length / 2));

    // Run twice: nothing is appended twice.
    const again = await runRestore(f.env(), p, recordingContext().ctx);
    expect(again).toMatchObject({ messages: 0, alreadyPresent: total });
  });

  it('restore.mail.folder puts a deleted folder back in place; restore.mail.messages restores chosen messages', async () => {
    const p = await f.plan(g1, 'restore.mail.folder', user.uid, { folder: 'Projects/2026' });
    await runRestore(f.env(), p, recordingContext().ctx);
    const box = new SavedMailbox(f.repo, partSnapshot(g1, 'mail/imap')!, (await f.host.mailboxLocation(p.entry.entity))!.partPath);
    const inbox = await box.messages(await box.folder('INBOX'));
    const pick = inbox.slice(0, 2);
    const pm = await f.plan(g1, 'restore.mail.messages', user.uid, { folder: 'INBOX', messageIds: pick.map((m) => m.id) });
    const r = await runRestore(f.env(), pm, recordingContext().ctx);

    const c = await f.imap(user.login);
    const now = await mailboxOverImap(c);
    await c.logout();
    expect(strip(now.get('Projects/2026'))).toEqual(strip(saved.get('Projects/2026')));
    // The two chosen INBOX messages were among the deleted half (the oldest-first order differs from UID order,
    // so some may have survived): after the restore both are in INBOX with their saved flags.
    expect((r.messages as number) + (r.alreadyPresent as number)).toBe(2);
    const ids = new Set(now.get('INBOX')!.map((m) => m.internalDate));
    for (const m of pick) expect(ids.has(m.internalDate.getTime())).toBe(true);
  });

  it('replace.mailbox makes the mailbox identical to the generation (folders, messages, flags, internal dates)', async () => {
    const p = await f.plan(g1, 'replace.mailbox', user.uid);
    const started = Date.now();
    const { ctx } = recordingContext();
    const result = await runRestore(f.env(), p, ctx);
    console.log(`replace.mailbox of ${user.login}: ${result.messages} messages, ${result.bytes} bytes in ${Date.now() - started} ms`);
    const c = await f.imap(user.login);
    const now = await mailboxOverImap(c);
    await c.logout();
    expect([...now.keys()].sort()).toEqual([...saved.keys()].sort());
    for (const [folder, msgs] of saved) expect(strip(now.get(folder)), folder).toEqual(strip(msgs));
  });

  it('stops when cancelled: a cancelled subfolder restore throws and appends nothing more', async () => {
    const p = await f.plan(g1, 'subfolder.mailbox', user.uid);
    p.catalog = { ...p.catalog, generation: { ...p.catalog.generation, time: new Date('2026-02-01T00:00:00Z') } };
    const controller = new AbortController();
    const rc = recordingContext(controller.signal);
    // Cancel as soon as the first message is in.
    const progress = rc.ctx.progress;
    rc.ctx.progress = (x) => {
      progress(x);
      if ((x.done ?? 0) >= 1) controller.abort(new Error('cancelled by the test'));
    };
    await expect(runRestore(f.env(), p, rc.ctx)).rejects.toThrow('cancelled by the test');
    const c = await f.imap(user.login);
    const now = await mailboxOverImap(c);
    await c.logout();
    const restored = [...now.entries()].filter(([k]) => k.startsWith('restored-2026-02-01')).reduce((n, [, v]) => n + v.length, 0);
    expect(restored).toBe(1);
  });

  it('refuses a folder the generation does not hold, and messages without a folder', async () => {
    await expect(validate(f.env(), await f.plan(g1, 'restore.mail.folder', user.uid, { folder: 'Nope' }))).rejects.toThrow(/not in the saved mailbox/);
    await expect(validate(f.env(), await f.plan(g1, 'restore.mail.messages', user.uid, { folder: 'INBOX' }))).rejects.toThrow(/at least one message/);
  });
});
