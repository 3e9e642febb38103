import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { Archiver, restore, type Repository, type SnapshotInfo } from '../../server/engine/index.js';
import { workerSettings } from '../../server/engine/worker-settings.js';
import { bytesOf, manifest, newRepo, tempDir } from './helpers.js';

let dir: { path: string; cleanup: () => Promise<void> };
let repo: Repository;
let src: string;
beforeEach(async () => {
  dir = await tempDir('dp-rworker-');
  repo = await newRepo(dir.path);
  src = join(dir.path, 'spool');
});
afterEach(async () => {
  await repo.close();
  await dir.cleanup();
});

async function snapshotOf(files: number): Promise<SnapshotInfo> {
  for (let i = 0; i < files; i++) {
    const folder = join(src, `f${i % 3}`);
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, `m${i}:2,`), bytesOf(i + 1, 2000 + i * 37, true));
  }
  const a = new Archiver(repo, { server: 'mail1', tag: 'mail/imap' });
  await a.addTree('/spool', src);
  return a.commit();
}

/** Restores `snap` whole, counting the codec workers asked for. */
async function restoreCounting(snap: SnapshotInfo): Promise<number> {
  let asked = 0;
  const codec = repo.codec.bind(repo);
  repo.codec = (use) => {
    asked++;
    return codec(use);
  };
  const out = join(dir.path, 'out');
  const s = await restore(repo, snap, { target: out });
  expect(s.errors).toBe(0);
  expect(await manifest(join(out, 'spool'))).toEqual(await manifest(src));
  return asked;
}

test.runIf(workerSettings().workers >= 2)('a restore that finds enough files to write shares them with a codec worker it starts during its walk', async () => {
  expect(await restoreCounting(await snapshotOf(80))).toBeGreaterThan(0);
});

test('a restore of a few files writes them on its own thread, without starting a worker', async () => {
  expect(await restoreCounting(await snapshotOf(10))).toBe(0);
});
