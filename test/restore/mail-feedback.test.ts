import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerationView } from '../../server/dataprotect/restore/generation-parts.js';
import { partSnapshot } from '../../server/dataprotect/restore/generation-parts.js';
import { SavedMailbox } from '../../server/dataprotect/restore/mailbox-reader.js';
import { runRestore } from '../../server/dataprotect/restore/operations/index.js';
import type { RestoreContext } from '../../server/dataprotect/restore/operations/context.js';
import { stopDovecot } from '../../server/host/reference/dovecot.js';
import { hostLayout } from '../../server/host/reference/layout.js';
import { explainError } from '../../server/jobs/explain-error.js';
import type { Phrase } from '../../server/store/task-record.js';
import { fixture, type Fixture } from './fixture.js';

// What a mail restore tells: counts that say what happened (with their phrase for the console), and, with Dovecot
// stopped, a failure explained as the mail server's refusal with its address, not a bare ECONNREFUSED.

let f: Fixture;
let g1: GenerationView;
let user: { uid: string; login: string };

beforeAll(async () => {
  f = await fixture('mailfb', 2);
  [user] = await f.sql<{ uid: string; login: string }>(
    `SELECT e.entry_uid AS uid, u.login || '@' || c.uid AS login FROM t_directory_entry e JOIN t_domain_user u ON u.item_id = e.item_id
       JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id WHERE e.kind = 'USER' ORDER BY e.entry_uid LIMIT 1`,
  );
  g1 = await f.backup(new Date('2026-01-06T01:00:00Z'));
}, 300_000);
afterAll(async () => {
  await f?.close();
});

function phrasedContext() {
  const lines: { message: string; phrase?: Phrase }[] = [];
  const ctx: RestoreContext = {
    signal: new AbortController().signal,
    progress: () => {},
    info: (message, phrase) => lines.push({ message, phrase }),
    warn: (message, phrase) => lines.push({ message, phrase }),
    attach: async () => undefined,
  };
  return { ctx, lines };
}

describe('mail restore feedback', () => {
  it('restoring messages that are still there says "2 of 2 messages were already there and were left alone", with its phrase', async () => {
    const entity = (await f.plan(g1, 'restore.mail.folder', user.uid, { folder: 'INBOX' })).entry.entity;
    const box = new SavedMailbox(f.repo, partSnapshot(g1, 'mail/imap')!, (await f.host.mailboxLocation(entity))!.partPath);
    const pick = (await box.messages(await box.folder('INBOX'))).slice(0, 2);
    expect(pick).toHaveLength(2);
    const p = await f.plan(g1, 'restore.mail.messages', user.uid, { folder: 'INBOX', messageIds: pick.map((m) => m.id) });
    const { ctx, lines } = phrasedContext();
    const r = await runRestore(f.env(), p, ctx);
    expect(r).toMatchObject({ messages: 0, alreadyPresent: 2 });
    expect(lines).toContainEqual({
      message: '2 of 2 messages were already there and were left alone',
      phrase: { key: 'task.line.mail.skipped', params: { count: 2, total: 2 } },
    });
    expect(lines).toContainEqual({ message: '0 of 2 messages were restored', phrase: { key: 'task.line.mail.appended', params: { count: 0, total: 2 } } });
    expect(lines).toContainEqual({ message: 'INBOX: 2 messages', phrase: { key: 'task.line.mail.folder', params: { folder: 'INBOX', count: 2 } } });
  });

  it('with Dovecot stopped, the failure is explained: the mail server at its address refused, is Dovecot running?', async () => {
    const layout = hostLayout(f.sb.root);
    const endpoint = JSON.parse(await readFile(path.join(layout.dovecot, 'endpoint.json'), 'utf8')) as { host: string; port: number };
    await stopDovecot(layout);
    const p = await f.plan(g1, 'restore.mail.folder', user.uid, { folder: 'INBOX' });
    const err = await runRestore(f.env(), p, phrasedContext().ctx).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).not.toBeNull();
    const address = `${endpoint.host}:${endpoint.port}`;
    expect(explainError(err)).toEqual({
      key: 'error.mail.refused',
      params: { address },
      message: `The mail server (${address}) refused the connection: is Dovecot running?`,
    });
  });
});
