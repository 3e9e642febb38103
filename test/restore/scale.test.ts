import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalog, forgetCatalogs } from '../../server/dataprotect/restore/catalog.js';
import type { GenerationView } from '../../server/dataprotect/restore/generation-parts.js';
import { runRestore } from '../../server/dataprotect/restore/operations/index.js';
import { fixture, recordingContext, type Fixture } from './fixture.js';

// Restoring one mailbox costs that mailbox, not the installation: the same mailbox restored from a 20-user and
// from the seeded 200-user installation reads about the mailbox's bytes from the repository and takes about as long.

interface Measure {
  users: number;
  catalogMs: number;
  replaceMs: number;
  subfolderMs: number;
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
      let r: Record<string, unknown> = {};
      for (let i = 0; i < runs; i++) {
        t = Date.now();
        r = await fn();
        ms = Math.min(ms, Date.now() - t);
      }
      return { ms, r };
    };
    const rep = await best(async () => runRestore(f.env(), await f.plan(g, 'replace.mailbox', u.uid), recordingContext().ctx));
    // Once: a second run would find every message already there and append nothing.
    const sub = await best(async () => runRestore(f.env(), await f.plan(g, 'subfolder.mailbox', u.uid), recordingContext().ctx), 1);
    expect(sub.r.messages).toBeGreaterThan(0);
    return {
      users, catalogMs, replaceMs: rep.ms, subfolderMs: sub.ms,
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
      `${m.users} users: one mailbox of ${m.mailboxBytes} B — replace.mailbox ${m.replaceMs} ms (read ${m.fetched} B from the repository), ` +
        `subfolder.mailbox ${m.subfolderMs} ms; entity catalog ${m.catalogMs} ms`,
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

  it('takes about as long in the 200-user installation as in a 20-user one', () => {
    expect(large.replaceMs).toBeLessThan(small.replaceMs * 3 + 300);
    expect(large.subfolderMs).toBeLessThan(small.subfolderMs * 3 + 300);
  });
});
