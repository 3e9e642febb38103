// A seeded reference host (PostgreSQL + Dovecot on a free loopback port), a repository, and generations made by
// the nightly backup's own run; restores run against these real parts.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { RepositoryGenerationParts, type GenerationView } from '../../server/dataprotect/restore/generation-parts.js';
import { loadCatalog, forgetCatalogs, type CatalogEntry } from '../../server/dataprotect/restore/catalog.js';
import type { PlannedRestore, RestoreContext, RestoreEnv } from '../../server/dataprotect/restore/operations/index.js';
import type { RestoreOperationId } from '../../server/dataprotect/restore-capabilities.js';
import { runGeneration } from '../../server/dataprotect/generation/run.js';
import { withClient } from '../../server/pg/client.js';
import { freePort, startDovecot, stopDovecot } from '../../server/host/reference/dovecot.js';
import { ReferenceHost } from '../../server/host/reference/host.js';
import { hostLayout } from '../../server/host/reference/layout.js';
import { IMAP_ADMIN_USER, imapAdminPassword } from '../../server/host/reference/credentials.js';
import { seedReference } from '../../server/host/reference/seed.js';
import type { Mailer } from '../../server/dataprotect/restore/mailer.js';
import { sandbox, type Sandbox } from '../host/helpers.js';

export interface Fixture {
  sb: Sandbox;
  host: ReferenceHost;
  repo: Repository;
  repoDir: string;
  generations: RepositoryGenerationParts;
  /** Runs a backup (a generation) at `time` (archived mail saved when asked; a mail recovery point when asked). */
  backup(time: Date, opts?: { archivedEmails?: boolean; recoveryPoint?: boolean }): Promise<GenerationView>;
  env(mailer?: Mailer | null): RestoreEnv;
  plan(g: GenerationView, operation: RestoreOperationId, uid: string, extra?: Partial<PlannedRestore>): Promise<PlannedRestore>;
  sql<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  imap(login: string): Promise<ImapFlow>;
  close(): Promise<void>;
}

export async function fixture(tag: string, users = 6, opts: { dovecot?: boolean } = {}): Promise<Fixture> {
  const sb = await sandbox(`rs_${tag}`);
  await seedReference({ connection: sb.db, root: sb.root, users });
  const layout = hostLayout(sb.root);
  if (opts.dovecot ?? true) await startDovecot(layout, { port: await freePort() });
  const host = new ReferenceHost(sb.root, sb.db);
  const repoDir = await mkdtemp(path.join(tmpdir(), `dp-repo-${tag}-`));
  const repo = await Repository.init(new LocalStorage(repoDir));
  const generations = new RepositoryGenerationParts(async () => repo);
  const f: Fixture = {
    sb, host, repo, repoDir, generations,
    async backup(time, opts = {}) {
      const r = await runGeneration({
        repo, host, trigger: opts.recoveryPoint ? 'recovery-point' : 'cli', productVersion: 'test', time,
        backupEmails: true, backupArchivedEmails: opts.archivedEmails ?? false, skippedTags: [],
      });
      forgetCatalogs();
      return generations.get(r.generation.id);
    },
    env(mailer = null) {
      return { repo, host, mailer };
    },
    async plan(g, operation, uid, extra = {}) {
      forgetCatalogs();
      const catalog = await loadCatalog(repo, host, g);
      const entry = catalog.byUid.get(uid) as CatalogEntry;
      if (!entry) throw new Error(`no entity ${uid} in generation ${g.id}`);
      return { operation, entry, catalog, actor: { login: 'admin0@global.virt', email: 'admin0@global.virt' }, ...extra };
    },
    sql: (text, params = []) => withClient(sb.db, async (c) => (await c.query(text, params)).rows),
    async imap(login) {
      const { port, host: address } = JSON.parse(await (await import('node:fs/promises')).readFile(path.join(layout.dovecot, 'endpoint.json'), 'utf8')) as { host: string; port: number };
      const c = new ImapFlow({ host: address, port, secure: false, logger: false, auth: { user: `${login}*${IMAP_ADMIN_USER}`, pass: await imapAdminPassword(layout) } });
      await c.connect();
      return c;
    },
    async close() {
      await repo.close().catch(() => {});
      await stopDovecot(layout).catch(() => {});
      await sb.cleanup();
      await rm(repoDir, { recursive: true, force: true });
    },
  };
  return f;
}

/** A RestoreContext that records what an operation reports. */
export function recordingContext(signal: AbortSignal = new AbortController().signal) {
  const log: string[] = [];
  const files: { name: string; content: string; contentType: string }[] = [];
  const progress: { done?: number; total?: number | null }[] = [];
  const ctx: RestoreContext = {
    signal,
    progress: (p) => progress.push(p),
    info: (m) => log.push(m),
    warn: (m) => log.push(`warn: ${m}`),
    attach: async (name, content, contentType) => files.push({ name, content: String(content), contentType }),
  };
  return { ctx, log, files, progress };
}

export interface ImapMessage {
  messageId: string;
  subject: string;
  flags: string[];
  internalDate: number;
  size: number;
}

/** Every folder's messages over IMAP (flags sorted, \Recent left out). */
export async function mailboxOverImap(c: ImapFlow): Promise<Map<string, ImapMessage[]>> {
  const out = new Map<string, ImapMessage[]>();
  for (const f of await c.list()) {
    const lock = await c.getMailboxLock(f.path, { readOnly: true });
    try {
      const msgs: ImapMessage[] = [];
      const exists = c.mailbox && typeof c.mailbox === 'object' ? c.mailbox.exists : 0;
      if (exists > 0) {
        for await (const m of c.fetch('1:*', { envelope: true, flags: true, internalDate: true, size: true })) {
          msgs.push({
            messageId: m.envelope?.messageId ?? '',
            subject: m.envelope?.subject ?? '',
            flags: [...(m.flags ?? [])].filter((x) => x !== '\\Recent').sort(),
            internalDate: new Date(m.internalDate!).getTime(),
            size: m.size ?? 0,
          });
        }
      }
      msgs.sort((a, b) => (a.messageId < b.messageId ? -1 : 1));
      out.set(f.path, msgs);
    } finally {
      lock.release();
    }
  }
  return out;
}
