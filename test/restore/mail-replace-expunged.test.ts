// Mail restores after messages were expunged over IMAP: what comes back must be visible over IMAP (Dovecot), not
// only present as files in the Maildir, with its flags and internal date. Dovecot keeps its indexes and uidlists
// outside the Maildir, where they still name the expunged messages' files.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImapFlow } from 'imapflow';
import type { GenerationView } from '../../server/dataprotect/restore/generation-parts.js';
import { partSnapshot } from '../../server/dataprotect/restore/generation-parts.js';
import { SavedMailbox } from '../../server/dataprotect/restore/mailbox-reader.js';
import { runRestore } from '../../server/dataprotect/restore/operations/index.js';
import { restoredFolderName } from '../../server/dataprotect/restore/operations/mail.js';
import { RepositoryGenerationParts } from '../../server/dataprotect/restore/generation-parts.js';
import { forgetCatalogs, loadCatalog } from '../../server/dataprotect/restore/catalog.js';
import type { PlannedRestore, RestoreEnv } from '../../server/dataprotect/restore/operations/index.js';
import type { RestoreOperationId } from '../../server/dataprotect/restore-capabilities.js';
import { globalFixture, imapSession, type GlobalFixture } from '../global-restore/helpers.js';
import { mailboxOverImap, recordingContext, type ImapMessage } from './fixture.js';

let g: GlobalFixture;
let gen: GenerationView;
let user: { uid: string; login: string };
let saved: Map<string, ImapMessage[]>;
let folders: string[];

// The global-restore fixture (every mailbox read over IMAP, read-only, before the backup) with its first user:
// some of its messages are in new/, the others in cur/, as on a live server.
beforeAll(async () => {
  g = await globalFixture('mailx', 4);
  const [login] = [...g.imap.keys()];
  saved = g.imap.get(login)!;
  folders = [...saved.entries()].filter(([, ms]) => ms.length >= 2).map(([k]) => k);
  gen = await new RepositoryGenerationParts(async () => g.repo).get(g.generation);
  const entity = (await catalog()).entries.find((e) => e.entity.kind === 'USER' && e.entity.email === login)!.entity;
  user = { uid: entity.uid, login };
});
afterAll(async () => {
  await g?.close();
});

async function catalog() {
  forgetCatalogs();
  return loadCatalog(g.repo, g.host, gen);
}

async function plan(operation: RestoreOperationId, extra: Partial<PlannedRestore> = {}): Promise<PlannedRestore> {
  const c = await catalog();
  return { operation, entry: c.byUid.get(user.uid)!, catalog: c, actor: { login: 'admin0@global.virt', email: 'admin0@global.virt' }, ...extra };
}

const env = (): RestoreEnv => ({ repo: g.repo, host: g.host, mailer: null });

async function session<T>(body: (c: ImapFlow) => Promise<T>): Promise<T> {
  const c = await imapSession(g.host.layout, user.login);
  try {
    return await body(c);
  } finally {
    await c.logout().catch(() => {});
  }
}

const overImap = () => session(mailboxOverImap);

async function uidValidity(folder: string): Promise<bigint> {
  return session(async (c) => {
    const st = await c.status(folder, { uidValidity: true });
    if (!st || st.uidValidity === undefined) throw new Error(`no UIDVALIDITY for ${folder}`);
    return st.uidValidity;
  });
}

/** Flags \Deleted and EXPUNGEs all but the last message of a folder (as a mail client deletes); answers how many. */
async function expungeAllButOne(folder: string): Promise<number> {
  return session(async (c) => {
    const lock = await c.getMailboxLock(folder);
    try {
      const uids = (await c.search({ all: true }, { uid: true })) as number[];
      const gone = uids.slice(0, -1).join(',');
      await c.messageFlagsAdd(gone, ['\\Deleted'], { uid: true });
      await c.messageDelete(gone, { uid: true });
      const left = (await c.search({ all: true }, { uid: true })) as number[];
      expect(left, folder).toEqual(uids.slice(-1));
      return uids.length - 1;
    } finally {
      lock.release();
    }
  });
}

function strip(ms: ImapMessage[] | undefined) {
  return (ms ?? []).map(({ messageId, flags, internalDate, size }) => ({ messageId, flags, internalDate, size }));
}

describe('mail restores after an expunge', () => {
  it('replace.mailbox brings every expunged message back visible over IMAP, with its flags and internal date, under a new UIDVALIDITY', async () => {
    expect(folders).toContain('INBOX');
    const before = new Map<string, bigint>();
    for (const x of folders) {
      before.set(x, await uidValidity(x));
      const gone = await expungeAllButOne(x);
      expect(gone).toBeGreaterThan(0);
    }
    await runRestore(env(), await plan('replace.mailbox'), recordingContext().ctx);
    const now = await overImap();
    expect([...now.keys()].sort()).toEqual([...saved.keys()].sort());
    for (const [x, msgs] of saved) expect(strip(now.get(x)), x).toEqual(strip(msgs));
    // The UIDs are new: clients must drop what they cached of the replaced folders.
    for (const x of folders) expect(await uidValidity(x), x).toBeGreaterThan(before.get(x)!);
  });

  it('replace.mailbox drops mail newer than the generation and restores the expunged, while a client holds INBOX open', async () => {
    await session(async (c) => {
      await c.append('INBOX', `From: a@b.c\r\nTo: ${user.login}\r\nSubject: after the backup\r\nMessage-ID: <after-backup@test>\r\n\r\nnew\r\n`, ['\\Seen'], new Date('2026-01-07T08:00:00Z'));
    });
    await expungeAllButOne('INBOX');
    // A client connected during the restore (Dovecot has the old index of INBOX open).
    const open = await imapSession(g.host.layout, user.login);
    try {
      await open.mailboxOpen('INBOX');
      await runRestore(env(), await plan('replace.mailbox'), recordingContext().ctx);
      await open.noop().catch(() => {});
    } finally {
      await open.logout().catch(() => {});
    }
    const now = await overImap();
    // Replace semantics: the mailbox becomes the generation's; what arrived after it is gone.
    expect(now.get('INBOX')!.some((m) => m.messageId === '<after-backup@test>')).toBe(false);
    for (const [x, msgs] of saved) expect(strip(now.get(x)), x).toEqual(strip(msgs));
  });

  it('subfolder.mailbox and restore.mail.messages bring expunged messages back visible over IMAP with their flags and internal dates', async () => {
    const gone = await expungeAllButOne('INBOX');
    const sub = await runRestore(env(), await plan('subfolder.mailbox'), recordingContext().ctx);
    expect(sub.messages).toBe([...saved.values()].reduce((n, x) => n + x.length, 0));
    let now = await overImap();
    const base = restoredFolderName(gen.time);
    for (const [x, msgs] of saved) expect(strip(now.get(x === 'INBOX' ? base : `${base}/${x}`)), x).toEqual(strip(msgs));

    const loc = (await g.host.mailboxLocation((await plan('restore.mail.messages')).entry.entity))!;
    const box = new SavedMailbox(g.repo, partSnapshot(gen, 'mail/imap')!, loc.partPath);
    const inbox = await box.messages(await box.folder('INBOX'));
    const r = await runRestore(env(), await plan('restore.mail.messages', { folder: 'INBOX', messageIds: inbox.map((m) => m.id) }), recordingContext().ctx);
    expect(r.messages).toBe(gone);
    now = await overImap();
    expect(strip(now.get('INBOX'))).toEqual(strip(saved.get('INBOX')));
  });
});
