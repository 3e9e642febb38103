import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Archiver, check, forgetSnapshots, prune, Repository, restore, type Storage } from '../../server/engine/index.js';
import { FaultyStorage, GuardedStorage, LocalStorage, type Fault, type FaultPlan } from '../../server/storage/index.js';
import { bytesOf, manifest, tempDir } from '../engine/helpers.js';

// Faults injected through a Storage wrapper on backup, prune and restore: each operation fails cleanly, with a
// message that says what failed where, and leaves a repository that `check --read-data` finds clean; the same
// operation without the fault then succeeds. The matrix is printed for the record.

// Prune is hit twice: on what it writes and deletes, and on the packs it reads to rewrite them.
type Op = 'backup' | 'prune' | 'prune (reading)' | 'restore';
// Timeouts far from the delays, whatever the machine's load: a busy machine only makes a call later, so a call
// 6 s late always misses 2 s, while the calls not slowed (the lock, the index) stay well within 2 s; one 20 ms
// late answers well within 60 s.
const FAULTS: { name: string; fault: Fault; timeoutMs: number; message: RegExp | null }[] = [
  { name: 'EIO', fault: { kind: 'EIO' }, timeoutMs: 60_000, message: /input\/output error/ },
  { name: 'ENOSPC', fault: { kind: 'ENOSPC' }, timeoutMs: 60_000, message: /no space left on device/ },
  { name: 'short write/read', fault: { kind: 'short' }, timeoutMs: 60_000, message: /short write|truncated|does not match|damaged|corrupt|decompress|unexpected end|hash/i },
  { name: 'slow I/O past the timeout', fault: { kind: 'slow', delayMs: 6_000 }, timeoutMs: 2_000, message: /no answer within 2 s/ },
  { name: 'slow I/O within the timeout', fault: { kind: 'slow', delayMs: 20 }, timeoutMs: 60_000, message: null },
];
const dirs: { cleanup: () => Promise<void> }[] = [];
afterAll(async () => {
  for (const d of dirs) await d.cleanup();
});

/** The calls a fault hits: an operation's own work on repository files, not its lock. */
function planFor(op: Op, fault: Fault, timeoutMs: number): FaultPlan {
  return (call, type) => {
    if (type === 'lock' || type === 'config') return null;
    if (fault.kind === 'slow' && fault.delayMs < timeoutMs) return fault; // every call, and it still succeeds
    if (op === 'restore' || op === 'prune (reading)') return call === 'read' && type === 'data' ? fault : null;
    if (op === 'backup') return call === 'write' && type === 'data' ? fault : null;
    // Prune: its new index, the rewritten packs and the deletions.
    return (call === 'write' || call === 'delete') && (type === 'data' || type === 'index') ? fault : null;
  };
}

/** A repository with two snapshots, the first forgotten, so that prune has packs to delete and to rewrite. */
async function fixture(root: string): Promise<{ repoDir: string; src: string; kept: string }> {
  const src = join(root, 'src');
  const repoDir = join(root, 'repo');
  await Repository.init(new LocalStorage(repoDir)).then((r) => r.close());
  const snap = async (round: number) => {
    await rm(src, { recursive: true, force: true });
    for (let i = 0; i < 40; i++) {
      await mkdir(join(src, `d${i % 4}`), { recursive: true });
      // Half the files change between rounds: the first snapshot's packs are partly still used.
      await writeFile(join(src, `d${i % 4}`, `${i}.eml`), bytesOf(i % 2 ? round * 100 + i : i, 20_000 + i * 300));
    }
    const repo = await Repository.open(new LocalStorage(repoDir));
    const a = new Archiver(repo, { server: 's1', tag: 'mail/imap' });
    await a.addTree('/spool', src);
    const s = await a.commit();
    await repo.close();
    return s.id;
  };
  await snap(1);
  const kept = await snap(2);
  const repo = await Repository.open(new LocalStorage(repoDir));
  await forgetSnapshots(repo, { keepLast: 1 });
  await repo.close();
  return { repoDir, src, kept };
}

async function runOp(op: Op, storage: Storage, f: { src: string; kept: string; target: string }): Promise<void> {
  const repo = await Repository.open(storage);
  try {
    if (op === 'backup') {
      await writeFile(join(f.src, 'd0', 'new.eml'), bytesOf(999, 300_000));
      const a = new Archiver(repo, { server: 's1', tag: 'mail/imap' });
      try {
        await a.addTree('/spool', f.src);
        await a.commit();
      } catch (err) {
        await a.abort();
        throw err;
      }
    } else if (op === 'prune' || op === 'prune (reading)') {
      await prune(repo, { repackThreshold: 0 });
    } else {
      const snap = (await repo.listSnapshots()).find((s) => s.id === f.kept)!;
      const r = await restore(repo, snap, { target: f.target });
      if (r.errors) throw new Error(`${r.errors} errors: ${r.damage[0] ?? 'see the log'}`);
    }
  } finally {
    await repo.close().catch(() => {});
  }
}

it('EIO, ENOSPC, short writes and slow I/O on backup, prune and restore fail cleanly and leave a repository that checks clean', async () => {
  const rows: string[] = [];
  const failures: string[] = [];
  for (const op of ['backup', 'prune', 'prune (reading)', 'restore'] as Op[]) {
    for (const { name, fault, timeoutMs, message } of FAULTS) {
      // A read does not fill a disk, and slow reads are the same cells as prune's slow writes.
      if (op === 'prune (reading)' && (fault.kind === 'ENOSPC' || fault.kind === 'slow')) continue;
      const d = await tempDir('dp-fault-');
      dirs.push(d);
      const f = await fixture(d.path);
      const target = join(d.path, 'restored');
      const faulty = new FaultyStorage(new LocalStorage(f.repoDir), planFor(op, fault, timeoutMs));
      let outcome: string;
      let error: Error | null = null;
      try {
        await runOp(op, new GuardedStorage(faulty, { timeoutMs }), { ...f, target });
        outcome = 'succeeded';
      } catch (err) {
        error = err as Error;
        outcome = `failed: ${error.message.replace(/\n.*/s, '').replace(d.path + '/', '').slice(0, 110)}`;
      }
      // Let what a timed-out call left running finish before looking at the repository.
      await faulty.settled();
      const repo = await Repository.open(new LocalStorage(f.repoDir));
      const checked = await check(repo, { readData: true });
      await repo.close();
      // The same operation without the fault then succeeds; a restore then matches the source exactly.
      let retry = 'ok';
      try {
        await rm(target, { recursive: true, force: true });
        await runOp(op, new LocalStorage(f.repoDir), { ...f, target });
        if (op === 'restore' && JSON.stringify(await manifest(join(target, 'spool'), { dirTimes: false })) === '[]') retry = 'restored nothing';
      } catch (err) {
        retry = `failed: ${(err as Error).message}`;
      }
      const injected = faulty.injected.length;
      rows.push(`${op.padEnd(15)} ${name.padEnd(28)} ${String(injected).padStart(4)} injected  check: ${checked.errors.length ? `${checked.errors.length} errors` : 'clean'}  retry: ${retry}  ${outcome}`);
      const bad = (why: string) => failures.push(`${op} / ${name}: ${why}`);
      if (injected === 0) bad('no fault was injected');
      if (message && !error) bad('succeeded despite the fault');
      if (!message && error) bad(`failed: ${error.message}`);
      if (message && error && !message.test(error.message)) bad(`unclear message: ${error.message}`);
      if (error && /^\s+at /m.test(error.message)) bad('a stack trace in the message');
      if (checked.errors.length) bad(`check: ${checked.errors.join('; ')}`);
      if (retry !== 'ok') bad(`retry ${retry}`);
    }
  }
  console.log(`fault injection matrix (operation, fault, calls hit, check --read-data after, retry without the fault, outcome):\n${rows.join('\n')}`);
  expect(failures).toEqual([]);
}, 300_000);
