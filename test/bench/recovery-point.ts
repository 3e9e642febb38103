/**
 * The cost of one mail recovery point (alone: `npm run build && node dist/test/bench/recovery-point.js`):
 *
 *   1. Seed a 200-user reference host (DP_BENCH_RP_USERS overrides) on the PostgreSQL of BENCH_DATABASE_URL, with
 *      Dovecot serving its spool, and take the first nightly generation (every part, archived mail included).
 *   2. A recovery point with no new mail, then one after ~40 new messages delivered over IMAP (to 40 users).
 *
 * For each: wall time, CPU time of this process (the engine's codec workers included; the nightly's pg_dump runs in
 * a child process and is not counted), bytes added to the repository as the parts report them, and the growth
 * of the repository on disk. Prints a table and the JSON.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { runGeneration } from '../../server/dataprotect/generation/run.js';
import { parseDatabaseUrl, withDatabase } from '../../server/pg/settings.js';
import { dropDatabase } from '../../server/pg/databases.js';
import { withClient } from '../../server/pg/client.js';
import { IMAP_ADMIN_USER, imapAdminPassword } from '../../server/host/reference/credentials.js';
import { freePort, startDovecot, stopDovecot } from '../../server/host/reference/dovecot.js';
import { ReferenceHost } from '../../server/host/reference/host.js';
import { SCHEMA_VERSION } from '../../server/host/reference/schema.js';
import { seedReference } from '../../server/host/reference/seed.js';
import { diskBytes, settle } from './tools.js';

export interface RunCost {
  what: string;
  parts: number;
  wallSeconds: number;
  cpuSeconds: number;
  bytesRead: number;
  bytesAdded: number;
  repositoryGrowth: number;
}

export interface RecoveryPointBench {
  users: number;
  messagesDelivered: number;
  runs: RunCost[];
}

export async function runRecoveryPointBench(o: { workDir: string; users?: number; messages?: number; log: (s: string) => void }): Promise<RecoveryPointBench> {
  const users = o.users ?? Number(process.env.DP_BENCH_RP_USERS ?? 200);
  const messages = o.messages ?? 40;
  const base = parseDatabaseUrl(process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  const db = withDatabase(base, `dp_bench_rp_${randomBytes(3).toString('hex')}`);
  await rm(o.workDir, { recursive: true, force: true });
  await mkdir(o.workDir, { recursive: true });
  const work = await mkdtemp(join(o.workDir, 'run-'));
  const root = join(work, 'host');
  const host = new ReferenceHost(root, db);
  const layout = host.layout;
  const repoDir = join(work, 'repo');
  const runs: RunCost[] = [];
  try {
    o.log(`recovery point: seeding ${users} users`);
    await seedReference({ connection: db, root, users });
    await startDovecot(layout, { port: await freePort() });
    const repo = await Repository.init(new LocalStorage(repoDir));
    try {
      const run = async (what: string, trigger: 'cli' | 'recovery-point') => {
        settle();
        const size = diskBytes(repoDir);
        const cpu = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        const r = await runGeneration({ repo, host, trigger, productVersion: SCHEMA_VERSION, backupEmails: true, backupArchivedEmails: true, skippedTags: [] });
        const wall = Number(process.hrtime.bigint() - t0) / 1e9;
        const used = process.cpuUsage(cpu);
        if (r.generation.status !== 'VALID') throw new Error(`${what}: ${r.generation.status}`);
        const cost: RunCost = {
          what, parts: r.generation.parts.length, wallSeconds: wall, cpuSeconds: (used.user + used.system) / 1e6,
          bytesRead: r.generation.parts.reduce((n, p) => n + p.sizeRead, 0), bytesAdded: r.generation.parts.reduce((n, p) => n + p.sizeAdded, 0),
          repositoryGrowth: diskBytes(repoDir) - size,
        };
        o.log(`recovery point: ${what}: ${cost.wallSeconds.toFixed(2)} s`);
        runs.push(cost);
      };
      await run('first nightly generation (every part)', 'cli');
      await run('recovery point, no new mail', 'recovery-point');
      await deliver(host, db, messages);
      await run(`recovery point, ${messages} new messages`, 'recovery-point');
    } finally {
      await repo.close();
    }
  } finally {
    await stopDovecot(layout).catch(() => {});
    await dropDatabase(db, db.database).catch(() => {});
    await rm(work, { recursive: true, force: true });
  }
  return { users, messagesDelivered: messages, runs };
}

/** `count` messages of a few kilobytes, one to each of the first users, over IMAP as a mail server delivers them. */
async function deliver(host: ReferenceHost, db: ReturnType<typeof withDatabase>, count: number): Promise<void> {
  const rows = await withClient(db, async (c) =>
    (await c.query<{ login: string; domain: string }>(
      `SELECT u.login, c.uid AS domain FROM t_directory_entry e JOIN t_domain_user u ON u.item_id = e.item_id
         JOIN t_container_item i ON i.id = e.item_id JOIN t_container c ON c.id = i.container_id WHERE e.kind = 'USER' ORDER BY e.entry_uid LIMIT $1`,
      [count],
    )).rows,
  );
  const { host: address, port } = JSON.parse(await readFile(join(host.layout.dovecot, 'endpoint.json'), 'utf8')) as { host: string; port: number };
  const pass = await imapAdminPassword(host.layout);
  for (let i = 0; i < count; i++) {
    const u = rows[i % rows.length];
    const c = new ImapFlow({ host: address, port, secure: false, logger: false, auth: { user: `${u.login}@${u.domain}*${IMAP_ADMIN_USER}`, pass } });
    await c.connect();
    try {
      const body = randomBytes(3000).toString('base64').replace(/(.{76})/g, '$1\r\n');
      const raw = `Message-ID: <bench-${i}-${randomBytes(4).toString('hex')}@acme.test>\r\nFrom: <sender@acme.test>\r\nTo: <${u.login}@${u.domain}>\r\nSubject: Bench message ${i}\r\nDate: ${new Date().toUTCString()}\r\n\r\n${body}\r\n`;
      await c.append('INBOX', Buffer.from(raw), [], new Date());
    } finally {
      await c.logout();
    }
  }
}

const mib = (n: number) => `${(n / 1048576).toFixed(2)} MiB`;

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runRecoveryPointBench({ workDir: process.env.DP_BENCH_DIR ?? join(process.cwd(), 'var', 'bench-recovery-point'), log: (s) => console.error(s) });
  console.log(`${r.users} users; ${r.messagesDelivered} messages delivered before the second recovery point`);
  console.log('| run | parts | wall | CPU | read | added | repository growth |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const x of r.runs) {
    console.log(`| ${x.what} | ${x.parts} | ${x.wallSeconds.toFixed(2)} s | ${x.cpuSeconds.toFixed(2)} s | ${mib(x.bytesRead)} | ${mib(x.bytesAdded)} | ${mib(x.repositoryGrowth)} |`);
  }
  console.log(JSON.stringify(r));
}
