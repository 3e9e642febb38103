import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Archiver, Repository } from '../../server/engine/index.js';
import { FaultyStorage, GuardedStorage, LocalStorage, MemoryStorage, storageTimeoutFromEnv } from '../../server/storage/index.js';
import { bytesOf, tempDir } from '../engine/helpers.js';

const dirs: { cleanup: () => Promise<void> }[] = [];
afterAll(async () => {
  for (const d of dirs) await d.cleanup();
});

it('a storage call that never answers fails after the timeout with the location and the call, and a cancel stops waiting at once', async () => {
  const hanging = new FaultyStorage(new MemoryStorage('nfs://gone/repo'), () => ({ kind: 'hang' }));
  await expect(new GuardedStorage(hanging, { timeoutMs: 100 }).read('data', 'ab'.repeat(32))).rejects.toThrow(
    /reading data abababababab at nfs:\/\/gone\/repo: no answer within 100 ms \(is the repository's location reachable\? DP_STORAGE_TIMEOUT_MS sets the limit\)/,
  );
  const cancel = new AbortController();
  const guarded = new GuardedStorage(hanging, { timeoutMs: 60_000, signal: cancel.signal, graceMs: 100 });
  const pending = guarded.write('index', 'cd'.repeat(32), Buffer.from('x'));
  cancel.abort(new Error('cancelled by admin'));
  await expect(pending).rejects.toThrow(/writing index cdcdcdcdcdcd at nfs:\/\/gone\/repo: stopped waiting, the run was cancelled/);
  // After the cancel, what is left (the final record, a lock) gets the short grace, not the full timeout.
  await expect(guarded.delete('lock', 'l1')).rejects.toThrow(/no answer within 100 ms/);
  // Listing pages are bounded too.
  const listing = (async () => {
    for await (const _ of new GuardedStorage(hanging, { timeoutMs: 100 }).list('snapshot')) void _;
  })();
  await expect(listing).rejects.toThrow(/listing snapshot files at nfs:\/\/gone\/repo: no answer within 100 ms/);
  expect(storageTimeoutFromEnv({})).toBe(120_000);
  expect(storageTimeoutFromEnv({ DP_STORAGE_TIMEOUT_MS: '5000' })).toBe(5000);
  expect(() => storageTimeoutFromEnv({ DP_STORAGE_TIMEOUT_MS: 'soon' })).toThrow(/DP_STORAGE_TIMEOUT_MS=soon is not a number of milliseconds/);
});

it('a cancel stops a backup mid-part, between files, instead of reading the whole tree', async () => {
  const d = await tempDir('dp-cancel-');
  dirs.push(d);
  const src = join(d.path, 'spool');
  for (let i = 0; i < 2000; i++) {
    await mkdir(join(src, `u${i % 20}`), { recursive: true });
    await writeFile(join(src, `u${i % 20}`, `${i}.`), bytesOf(i, 2000, true));
  }
  const repo = await Repository.init(new LocalStorage(join(d.path, 'repo')));
  const cancel = new AbortController();
  let files = 0;
  const a = new Archiver(repo, {
    server: 's1', tag: 'mail/imap', signal: cancel.signal,
    progress: { file: () => (++files === 50 ? cancel.abort(new Error('cancelled by admin')) : undefined) },
  });
  await expect(a.addTree('/spool', src)).rejects.toThrow(/cancelled by admin/);
  await a.abort();
  expect(files).toBeLessThan(2000);
  expect(await repo.listSnapshots()).toEqual([]);
  await repo.close();
});
