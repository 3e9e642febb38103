/**
 * Single-entity restores against the installation's size: the same restore on a small and a ten times larger
 * installation (200 and 2,000 users by default; `--entity-users 200,2000`), which should take the same time.
 *
 *   - One mailbox (`restore --include`, as in the mail case) from a generated spool of `users` users, the same
 *     number of messages per user (small messages: the installation's size is the point, not the mailbox's).
 *   - `complete.restore.user` (`entity restore`, as the console runs it) of a deleted user on a seeded reference
 *     host of `users` users (Dovecot on a free port), after one generation (`generation backup`): the user is
 *     deleted as an administrator would (directory rows, containers, mailbox), then restored.
 *
 * Each restore runs three times; the median counts. Rows: the small installation's time, then the larger one's
 * with the small one as `ref` (target <= 1.2x).
 */

import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { generateSpool, userName } from '../../server/demo/mail-spool.js';
import { withClient } from '../../server/pg/client.js';
import { dropDatabase } from '../../server/pg/databases.js';
import { parseDatabaseUrl, siblingDatabaseUrl } from '../../server/pg/settings.js';
import { freePort, startDovecot, stopDovecot } from '../../server/host/reference/dovecot.js';
import { ReferenceHost } from '../../server/host/reference/host.js';
import { seedReference } from '../../server/host/reference/seed.js';
import { informative, vs, type BenchRow } from './table.js';
import { BM_DATAPROTECT, measure, treeStats } from './tools.js';

const RUNS = 3;
/** Messages per user of the generated spool, and of the reference hosts' mailboxes. */
export const SPOOL_MESSAGES = 10;
export const HOST_MESSAGES = 5;

export interface EntityScaleOptions {
  workDir: string;
  /** The small and the large installation. */
  users: [number, number];
  log: (line: string) => void;
}

export interface EntityScaleBench {
  users: [number, number];
  mailbox: Record<number, { seconds: number[]; spoolMiB: number; files: number }>;
  completeUser: Record<number, { seconds: number[]; generationSeconds: number }>;
  rows: BenchRow[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function runEntityScaleBench(o: EntityScaleOptions): Promise<EntityScaleBench> {
  const work = resolve(o.workDir);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const out: EntityScaleBench = { users: o.users, mailbox: {}, completeUser: {}, rows: [] };
  try {
    for (const users of o.users) out.mailbox[users] = await mailboxRestore(join(work, `spool-${users}`), users, o.log);
    for (const users of o.users) out.completeUser[users] = await completeUserRestore(join(work, `host-${users}`), users, o.log);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const [small, large] = o.users;
  const n = (x: number) => x.toLocaleString('en-US');
  out.rows.push(
    { metric: `restore one mailbox (${out.mailbox[small].files} files), ${n(small)}-user spool`, unit: 's', values: { ours: median(out.mailbox[small].seconds) }, targets: [informative] },
    {
      metric: `restore one mailbox (${out.mailbox[large].files} files), ${n(large)}-user spool (ref: ${n(small)} users)`, unit: 's',
      values: { ours: median(out.mailbox[large].seconds), ref: median(out.mailbox[small].seconds) }, targets: [vs('ref', 1.2)],
    },
    { metric: `complete.restore.user, ${n(small)}-user host`, unit: 's', values: { ours: median(out.completeUser[small].seconds) }, targets: [informative] },
    {
      metric: `complete.restore.user, ${n(large)}-user host (ref: ${n(small)} users)`, unit: 's',
      values: { ours: median(out.completeUser[large].seconds), ref: median(out.completeUser[small].seconds) }, targets: [vs('ref', 1.2)],
    },
  );
  return out;
}

/** A spool of `users` users, one backup, then the same user's mailbox restored RUNS times. */
async function mailboxRestore(dir: string, users: number, log: (s: string) => void): Promise<EntityScaleBench['mailbox'][number]> {
  const spool = join(dir, 'spool');
  const repo = join(dir, 'repo');
  log(`entity scale: a spool of ${users} users x ${SPOOL_MESSAGES} messages`);
  await generateSpool(spool, { users, messagesPerUser: SPOOL_MESSAGES, attachmentRate: 0.02 });
  const spoolStats = treeStats(spool);
  await measure(BM_DATAPROTECT, ['repo', 'init', '--repo', repo]);
  await measure(BM_DATAPROTECT, ['backup', '--repo', repo, '--tag', 'mail/imap', '--server', 'bench', spool, '--json']);
  const user = userName(7);
  const expected = treeStats(join(spool, user));
  const seconds: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const target = join(dir, 'restored');
    const m = await measure(BM_DATAPROTECT, ['restore', 'latest', '--repo', repo, '--include', join(spool, user), '--target', target, '--json']);
    const got = treeStats(join(target, spool, user));
    if (got.files !== expected.files || got.bytes !== expected.bytes) throw new Error(`one-mailbox restore (${users} users) gave ${got.files} files / ${got.bytes} bytes, expected ${expected.files} / ${expected.bytes}`);
    await rm(target, { recursive: true, force: true });
    seconds.push(m.seconds);
  }
  log(`entity scale: one mailbox of ${expected.files} files out of ${users} users: ${seconds.map((s) => s.toFixed(2)).join(', ')} s`);
  await rm(dir, { recursive: true, force: true });
  return { seconds, spoolMiB: spoolStats.bytes / 2 ** 20, files: expected.files };
}

/** A reference host of `users` users, one generation, then one user deleted and brought back RUNS times. */
async function completeUserRestore(root: string, users: number, log: (s: string) => void): Promise<EntityScaleBench['completeUser'][number]> {
  const url = siblingDatabaseUrl(process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', `dp_bench_es_${users}_${randomBytes(3).toString('hex')}`);
  const db = parseDatabaseUrl(url);
  const repo = join(root, '..', `repo-${users}`);
  const host = new ReferenceHost(root, db);
  const env = { DATABASE_URL: url };
  try {
    log(`entity scale: seeding a reference host of ${users} users`);
    await seedReference({ connection: db, root, users, messagesPerUser: HOST_MESSAGES });
    await startDovecot(host.layout, { port: await freePort() });
    const gen = await measure(BM_DATAPROTECT, ['generation', 'backup', '--repo', repo, '--host-root', root, '--no-post-script', '--no-retention', '--json'], { env });
    log(`entity scale: generation of ${users} users in ${gen.seconds.toFixed(1)} s`);
    const [u] = await withClient(db, async (c) =>
      (await c.query<{ uid: string; login: string; domain: string }>(
        `SELECT e.entry_uid AS uid, u.login, c.uid AS domain FROM t_directory_entry e JOIN t_domain_user u ON u.item_id = e.item_id
           JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id WHERE e.kind = 'USER' ORDER BY e.entry_uid OFFSET 7 LIMIT 1`,
      )).rows,
    );
    const seconds: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // Deleted as an administrator would: its containers, its directory entry, its mailbox.
      await withClient(db, async (c) => {
        await c.query('DELETE FROM t_container WHERE owner = $1', [u.uid]);
        await c.query('DELETE FROM t_container_item WHERE uid = $1 AND container_id = (SELECT id FROM t_container WHERE uid = $2)', [u.uid, u.domain]);
      });
      await rm(join(host.layout.spool, u.domain, u.login), { recursive: true, force: true });
      if (await host.directory.entity(u.domain, u.uid)) throw new Error(`${u.login}@${u.domain} is still in the directory after its deletion`);
      const m = await measure(BM_DATAPROTECT, ['entity', 'restore', 'latest', '--repo', repo, '--host-root', root, '--entity', u.uid, '--op', 'complete.restore.user', '--json'], { env });
      if (!(await host.directory.entity(u.domain, u.uid))) throw new Error(`complete.restore.user did not bring ${u.login}@${u.domain} back`);
      seconds.push(m.seconds);
    }
    log(`entity scale: complete.restore.user of ${u.login}@${u.domain} out of ${users} users: ${seconds.map((s) => s.toFixed(2)).join(', ')} s`);
    return { seconds, generationSeconds: gen.seconds };
  } finally {
    await stopDovecot(host.layout).catch(() => {});
    await dropDatabase(db, db.database).catch(() => {});
  }
}
