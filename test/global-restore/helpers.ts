// A seeded reference host (PostgreSQL + Dovecot on a free port) backed up by the nightly run's own code, and
// what a global restore must give back: every host table row for row, every file with its mode, owner and times.

import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { runGeneration } from '../../server/dataprotect/generation/run.js';
import { type ConnectionSettings } from '../../server/pg/settings.js';
import { withClient } from '../../server/pg/client.js';
import { dropDatabase } from '../../server/pg/databases.js';
import type { HostPort } from '../../server/host/port.js';
import { freePort, startDovecot, stopDovecot } from '../../server/host/reference/dovecot.js';
import { ReferenceHost } from '../../server/host/reference/host.js';
import { referenceInstallation } from '../../server/host/reference/installation.js';
import { CORE_SERVER, MAIL_SERVER, hostLayout, type HostLayout } from '../../server/host/reference/layout.js';
import { SCHEMA_VERSION } from '../../server/host/reference/schema.js';
import { IMAP_ADMIN_USER, imapAdminPassword } from '../../server/host/reference/credentials.js';
import { seedReference } from '../../server/host/reference/seed.js';
import { sandbox, type Sandbox } from '../host/helpers.js';
import { mailboxOverImap, type ImapMessage } from '../restore/fixture.js';

export interface FileEntry {
  path: string;
  type: 'dir' | 'file' | 'symlink';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeUs: string;
  sha256: string | null;
}

/** The directories a global restore rebuilds (the parts' data locations). */
export function dataDirs(layout: HostLayout): string[] {
  return [layout.spool, layout.archive, layout.filehosting, layout.conf(CORE_SERVER), layout.conf(MAIL_SERVER)];
}

/** Every file and directory under the data directories, with content digest, mode, owner and mtime. */
export async function recordFiles(layout: HostLayout, opts: { dirMtimes?: boolean } = {}): Promise<FileEntry[]> {
  const out: FileEntry[] = [];
  const walk = async (abs: string) => {
    const st = await fs.lstat(abs, { bigint: true });
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
    out.push({
      path: path.relative(layout.root, abs), type, mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid),
      size: type === 'file' ? Number(st.size) : 0,
      // The engine restores times to the microsecond (what utimes takes).
      mtimeUs: type === 'dir' && !opts.dirMtimes ? '' : (st.mtimeNs / 1000n).toString(),
      sha256: type === 'file' ? createHash('sha256').update(await fs.readFile(abs)).digest('hex') : null,
    });
    if (type === 'dir') for (const n of (await fs.readdir(abs)).sort()) await walk(path.join(abs, n));
  };
  for (const d of dataDirs(layout)) await walk(d);
  return out;
}

/** Every table's rows as text, sorted; and every sequence's position. */
export async function recordTables(db: ConnectionSettings): Promise<Record<string, string[]>> {
  return withClient(db, async (c) => {
    await c.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3`);
    const out: Record<string, string[]> = {};
    const tables = await c.query<{ s: string; t: string }>(`SELECT schemaname AS s, tablename AS t FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`);
    for (const { s, t } of tables.rows) {
      const rows = await c.query<{ r: string }>(`SELECT x::text AS r FROM "${s}"."${t}" x`);
      out[`${s}.${t}`] = rows.rows.map((r) => r.r).sort();
    }
    const seqs = await c.query<{ s: string; n: string }>(`SELECT schemaname AS s, sequencename AS n FROM pg_sequences ORDER BY 1, 2`);
    for (const { s, n } of seqs.rows) {
      const v = await c.query<{ v: string }>(`SELECT last_value::text || ' ' || is_called::text AS v FROM "${s}"."${n}"`);
      out[`sequence ${s}.${n}`] = [v.rows[0].v];
    }
    return out;
  });
}

/** What a disaster leaves: the host's database dropped, its spool, archive, file hosting and configuration gone. */
export async function wipeInstallation(host: ReferenceHost): Promise<void> {
  await dropDatabase(host.database, host.database.database);
  for (const d of dataDirs(host.layout)) await fs.rm(d, { recursive: true, force: true });
}

export interface GlobalFixture {
  sb: Sandbox;
  host: ReferenceHost;
  repo: Repository;
  repoDir: string;
  generation: string;
  files: FileEntry[];
  tables: Record<string, string[]>;
  /** Every mailbox over IMAP as it was when backed up. */
  imap: Map<string, Map<string, ImapMessage[]>>;
  env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export async function mailboxLogins(layout: HostLayout): Promise<string[]> {
  const out: string[] = [];
  for (const d of (await fs.readdir(layout.spool)).sort()) for (const b of (await fs.readdir(path.join(layout.spool, d))).sort()) out.push(`${b}@${d}`);
  return out;
}

export async function imapSession(layout: HostLayout, login: string): Promise<ImapFlow> {
  const { port, host } = JSON.parse(await fs.readFile(path.join(layout.dovecot, 'endpoint.json'), 'utf8')) as { host: string; port: number };
  const c = new ImapFlow({ host, port, secure: false, logger: false, auth: { user: `${login}*${IMAP_ADMIN_USER}`, pass: await imapAdminPassword(layout) } });
  await c.connect();
  return c;
}

export async function everyMailbox(layout: HostLayout): Promise<Map<string, Map<string, ImapMessage[]>>> {
  const out = new Map<string, Map<string, ImapMessage[]>>();
  for (const login of await mailboxLogins(layout)) {
    const c = await imapSession(layout, login);
    try {
      out.set(login, await mailboxOverImap(c));
    } finally {
      await c.logout().catch(() => {});
    }
  }
  return out;
}

/**
 * Seeds `users` users, reads every mailbox over IMAP once (Dovecot settles its spool), backs up every part
 * and records the installation. `backupHost` lets a test describe the servers differently at backup time;
 * `password` makes the repository encrypted.
 */
export async function globalFixture(
  tag: string,
  users = 8,
  opts: { backupHost?: (h: ReferenceHost) => HostPort; beforeBackup?: (h: ReferenceHost) => Promise<void>; password?: string } = {},
): Promise<GlobalFixture> {
  const sb = await sandbox(`gr_${tag}`);
  await seedReference({ connection: sb.db, root: sb.root, users, messagesPerUser: 6, eventsPerUser: 4, contactsPerUser: 3, todosPerUser: 2 });
  const host = new ReferenceHost(sb.root, sb.db);
  const layout = hostLayout(sb.root);
  await startDovecot(layout, { port: await freePort() });
  await opts.beforeBackup?.(host);
  const imap = await everyMailbox(layout);
  const repoDir = await mkdtemp(path.join(tmpdir(), `dp-repo-gr-${tag}-`));
  const repo = await Repository.init(new LocalStorage(repoDir), { password: opts.password, scrypt: opts.password ? { N: 1024, r: 8, p: 1 } : undefined });
  const r = await runGeneration({
    repo, host: opts.backupHost?.(host) ?? host, trigger: 'cli', productVersion: SCHEMA_VERSION,
    backupEmails: true, backupArchivedEmails: true, skippedTags: [],
  });
  if (r.generation.status !== 'VALID') throw new Error(`backup not VALID: ${JSON.stringify(r.generation.parts.map((p) => [p.tag, p.messages]))}`);
  const d = sb.db;
  return {
    sb, host, repo, repoDir, generation: r.generation.id, imap,
    files: await recordFiles(layout),
    tables: await recordTables(sb.db),
    env: { DATABASE_URL: `postgres://${d.user}@${d.host}:${d.port}/${d.database}` },
    async close() {
      await repo.close().catch(() => {});
      await stopDovecot(layout).catch(() => {});
      await sb.cleanup();
      await rm(repoDir, { recursive: true, force: true });
    },
  };
}

export { referenceInstallation };
