import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalog, forgetCatalogs } from '../../server/dataprotect/restore/catalog.js';
import type { GenerationView } from '../../server/dataprotect/restore/generation-parts.js';
import { runRestore } from '../../server/dataprotect/restore/operations/index.js';
import { fixture, recordingContext, type Fixture } from './fixture.js';

// Restoring one mailbox costs that mailbox, not the installation: the same mailbox restored from a 20-user and
// from the seeded 200-user installation reads about the mailbox's bytes from the repository and costs about as
// much. Cost is compared in measures a busy machine does not distort: bytes read from the repository and this
// process's CPU time (a restore that walked the whole installation would multiply both); wall-clock times are
// printed for the record only, since other processes on the machine stretch them.

interface Measure {
  users: number;
  catalogMs: number;
  replaceMs: number;
  subfolderMs: number;
  /** CPU time of this process (user + system), best of the runs. */
  replaceCpuMs: number;
  subfolderCpuMs: number;
  mailboxBytes: number;
  fetched: number;
}

async function measure(users: number): Promise<Measure> {
  const f: Fixture = await fixture(`scale${users}`, users);
  try {
    const g: GenerationView = await f.backup(new Date('2026-01-11T01:00:00Z'));
    const [u] = await f.sql<{ uid: string }>(`SELECT entry_uid AS uid FROM t_directory_entry WHERE kind = 'USER' ORDER BY entry_uid LIMIT 1`);
    forgetCatalogs();
    let t = Date.now();
    await loadCatalog(f.repo, f.host, g);
    const catalogMs = Date.now() - t;
    const best = async (fn: () => Promise<Record<string, unknown>>, runs = 3) => {
      let ms = Infinity;
      let cpuMs = Infinity;
      let r: Record<string, unknown> = {};
      for (let i = 0; i < runs; i++) {
        t = Date.now();
        const cpu = process.cpuUsage();
        r = await fn();
        const used = process.cpuUsage(cpu);
        cpuMs = Math.min(cpuMs, (used.user + used.system) / 1000);
        ms = Math.min(ms, Date.now() - t);
      }
      return { ms, cpuMs, r };
    };
    const rep = await best(async () => runRestore(f.env(), await f.plan(g, 'replace.mailbox', u.uid), recordingContext().ctx));
    // Once: a second run would find every message already there and append nothing.
    const sub = await best(async () => runRestore(f.env(), await f.plan(g, 'subfolder.mailbox', u.uid), recordingContext().ctx), 1);
    expect(sub.r.messages).toBeGreaterThan(0);
    return {
      users, catalogMs, replaceMs: rep.ms, subfolderMs: sub.ms, replaceCpuMs: rep.cpuMs, subfolderCpuMs: sub.cpuMs,
      mailboxBytes: rep.r.bytes as number, fetched: rep.r.bytesReadFromRepository as number,
    };
  } finally {
    await f.close();
  }
}

let small: Measure;
let large: Measure;

beforeAll(async () => {
  small = await measure(20);
  large = await measure(200);
  for (const m of [small, large]) {
    console.log(
      `${m.users} users: one mailbox of ${m.mailboxBytes} B — replace.mailbox ${m.replaceMs} ms, CPU ${m.replaceCpuMs.toFixed(0)} ms (read ${m.fetched} B from the repository), ` +
        `subfolder.mailbox ${m.subfolderMs} ms, CPU ${m.subfolderCpuMs.toFixed(0)} ms; entity catalog ${m.catalogMs} ms`,
    );
  }
}, 600_000);

describe('restoring one mailbox', () => {
  it('reads about that mailbox from the repository, whatever the size of the installation', () => {
    for (const m of [small, large]) {
      expect(m.fetched).toBeGreaterThan(0);
      // Compressed blobs of the mailbox's messages plus its directory trees: never the whole spool.
      expect(m.fetched).toBeLessThan(m.mailboxBytes * 2 + 64 * 1024);
    }
  });

  it('costs about as much in the 200-user installation as in a 20-user one', () => {
    // Repository bytes per mailbox byte: ten times the users add only the root directory's wider listing.
    expect(large.fetched / large.mailboxBytes).toBeLessThan((small.fetched / small.mailboxBytes) * 1.5 + 16 * 1024 / large.mailboxBytes);
    // CPU time, which other processes do not stretch (a walk of ten times the mailboxes would).
    expect(large.replaceCpuMs).toBeLessThan(small.replaceCpuMs * 3 + 300);
    expect(large.subfolderCpuMs).toBeLessThan(small.subfolderCpuMs * 3 + 300);
  });
});
