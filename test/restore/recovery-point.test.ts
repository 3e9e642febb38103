// Mail recovery points against the real parts (PostgreSQL, Dovecot over IMAP, the repository): a message delivered
// after a recovery point and deleted before the next nightly generation comes back from the recovery point; the
// recovery point holds the mail parts alone, restores nothing else, is no generation for a global restore, and
// leaves the nightly retention alone.

import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyRetention } from '../../server/dataprotect/generation/retention.js';
import { findGeneration, readGenerations, readLatest } from '../../server/dataprotect/generation/format.js';
import { discoverGenerations } from '../../server/dataprotect/global-restore/discover.js';
import type { GenerationView } from '../../server/dataprotect/restore/generation-parts.js';
import { EntityRestores } from '../../server/dataprotect/restore/service.js';
import { KEYS, startTestApi, type TestApi } from '../http/harness.js';
import { fixture, mailboxOverImap, type Fixture, type ImapMessage } from './fixture.js';

interface User { uid: string; login: string; domain: string }

let f: Fixture;
let api: TestApi;
let nightly: GenerationView;
let point: GenerationView;
let user: User;
const DELIVERED_ID = '<after-the-recovery-point@acme.test>';
const NIGHT = new Date('2026-01-05T01:00:00Z');
const DELIVERED = new Date('2026-01-05T09:07:00Z');
const POINT = new Date('2026-01-05T09:15:00Z');

const get = (url: string) => api.app.inject({ method: 'GET', url: `/api/dataprotect${url}`, headers: { 'x-bm-apikey': KEYS.admin } });
const post = (url: string, body: unknown) =>
  api.app.inject({ method: 'POST', url: `/api/dataprotect${url}`, headers: { 'x-bm-apikey': KEYS.admin, 'content-type': 'application/json' }, payload: JSON.stringify(body) });

async function finished(id: string) {
  for (let i = 0; i < 600; i++) {
    const t = (await get(`/tasks/${id}`)).json();
    if (t.status !== 'RUNNING') return t;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`task ${id} did not finish`);
}

async function inbox(): Promise<ImapMessage[]> {
  const c = await f.imap(`${user.login}@${user.domain}`);
  try {
    return (await mailboxOverImap(c)).get('INBOX') ?? [];
  } finally {
    await c.logout();
  }
}

beforeAll(async () => {
  f = await fixture('recpoint', 6);
  [user] = await f.sql<User>(
    `SELECT e.entry_uid AS uid, u.login, c.uid AS domain FROM t_directory_entry e JOIN t_domain_user u ON u.item_id = e.item_id
       JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id WHERE e.kind = 'USER' ORDER BY e.entry_uid LIMIT 1`,
  );
  nightly = await f.backup(NIGHT);
  // In the morning a message arrives; the quarter-hour's recovery point saves it.
  const c = await f.imap(`${user.login}@${user.domain}`);
  try {
    const raw = Buffer.from(`Message-ID: ${DELIVERED_ID}\r\nFrom: <client@acme.test>\r\nTo: <${user.login}@${user.domain}>\r\nSubject: The signed contract\r\nDate: Mon, 05 Jan 2026 09:07:00 +0000\r\n\r\nSigned, attached.\r\n`);
    await c.append('INBOX', raw, ['\\Seen'], DELIVERED);
  } finally {
    await c.logout();
  }
  point = await f.backup(POINT, { recoveryPoint: true });
  api = await startTestApi();
  api.deps.restores = new EntityRestores(api.deps.tasks, api.deps.audit, { repository: async () => f.repo, generations: f.generations, host: f.host, mailer: null });
}, 300_000);
afterAll(async () => {
  await api?.close();
  await f?.close();
});

describe('mail recovery point', () => {
  it('holds the mail parts alone, marked as a recovery point, and borrows the directory of the nightly generation before it', async () => {
    const stored = (await readGenerations(f.repo)).find((g) => g.record.id === point.id)!;
    expect(stored.record.trigger).toBe('recovery-point');
    expect(stored.record.status).toBe('VALID');
    expect(stored.record.parts.map((p) => p.tag)).toEqual(['mail/imap']);
    expect(point.recoveryPoint).toBe(true);
    expect(point.base).toBe(nightly.id);
    // `latest` (and what a global restore or a rehearsal calls latest) stays the nightly generation.
    expect((await readLatest(f.repo))?.generation).toBe(nightly.id);
    expect((await findGeneration(f.repo, 'latest')).record.id).toBe(nightly.id);
    // The nightly did not have the message: only the recovery point can bring it back.
    const fromNightly = (await get(`/generations/${nightly.id}/entities/${user.uid}/mail/messages?folder=INBOX&search=${encodeURIComponent('signed contract')}`)).json();
    expect(fromNightly.total).toBe(0);
  });

  it('a message delivered after the recovery point\'s nightly and deleted before the next one is restored from the recovery point (checked over IMAP)', async () => {
    expect((await inbox()).some((m) => m.messageId === DELIVERED_ID)).toBe(true);
    const c = await f.imap(`${user.login}@${user.domain}`);
    try {
      const lock = await c.getMailboxLock('INBOX');
      try {
        const uids = await c.search({ header: { 'message-id': DELIVERED_ID } }, { uid: true });
        expect(uids && uids.length).toBe(1);
        await c.messageDelete(uids as number[], { uid: true });
      } finally {
        lock.release();
      }
    } finally {
      await c.logout();
    }
    expect((await inbox()).some((m) => m.messageId === DELIVERED_ID)).toBe(false);

    const caps = (await get(`/restore/capabilities?generationId=${point.id}`)).json().map((o: { identifier: string }) => o.identifier);
    expect(caps).toEqual(expect.arrayContaining(['replace.mailbox', 'subfolder.mailbox', 'restore.mail.folder', 'restore.mail.messages']));
    expect(caps).not.toContain('replace.calendars');
    expect(caps).not.toContain('complete.restore.user');

    const found = (await get(`/generations/${point.id}/entities/${user.uid}/mail/messages?folder=INBOX&search=${encodeURIComponent('signed contract')}`)).json();
    expect(found.total).toBe(1);
    const r = await post('/restores', {
      operation: 'restore.mail.messages', generationId: point.id, entity: { kind: 'USER', uid: user.uid, domainUid: user.domain },
      folder: 'INBOX', messageIds: [found.items[0].id],
    });
    expect(r.statusCode).toBe(202);
    const task = await finished(r.json().task.id);
    expect(task.status).toBe('SUCCEEDED');
    const back = (await inbox()).filter((m) => m.messageId === DELIVERED_ID);
    expect(back).toHaveLength(1);
    expect(back[0]).toMatchObject({ subject: 'The signed contract', flags: ['\\Seen'], internalDate: DELIVERED.getTime() });
  });

  it('refuses the operations that read more than mail, with what to do (400)', async () => {
    const r = await post('/restores', { operation: 'replace.calendars', generationId: point.id, entity: { kind: 'USER', uid: user.uid, domainUid: user.domain } });
    expect(r.statusCode).toBe(400);
    expect(r.json().detail).toContain('mail recovery point');
    expect(r.json().detail).toContain('nightly generation');
  });

  it('is not offered to a global restore: discovery lists the nightly generations only', async () => {
    const listed = await discoverGenerations(f.repo);
    expect(listed.map((g) => g.id)).toEqual([nightly.id]);
  });

  it('retention keeps recovery points their own number of days, and they never displace a nightly generation', async () => {
    // Two days later with a one-day window: the recovery point (2 days) is still kept, as the nightly (newest valid).
    const soon = await applyRetention(f.repo, { days: 1, recoveryPointDays: 3 }, { now: new Date('2026-01-07T09:00:00Z'), noPrune: true });
    expect(soon.remove).toEqual([]);
    expect(soon.keep.find((k) => k.id === point.id)?.reasons).toEqual(['recovery point of the last 3 days']);
    expect(soon.keep.find((k) => k.id === nightly.id)?.reasons).toContain('newest valid generation');
    // Past its days it goes; the nightly stays whatever happens to the recovery points.
    const later = await applyRetention(f.repo, { days: 1, recoveryPointDays: 2 }, { now: new Date('2026-01-07T09:16:00Z') });
    expect(later.remove.map((x) => x.id)).toEqual([point.id]);
    expect((await readGenerations(f.repo)).map((g) => g.record.id)).toEqual([nightly.id]);
  });
});
