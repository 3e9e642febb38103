import { open, readdir, truncate, writeFile, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { BlobType } from '../../server/engine/blob-index.js';
import { Archiver, check, restore, RepositoryDamagedError, type Repository, type SnapshotInfo } from '../../server/engine/index.js';
import { bytesOf, newRepo, packTypes, tempDir } from './helpers.js';
import { jsonLines, runCli } from './cli-helpers.js';

let dir: { path: string; cleanup: () => Promise<void> };
let repo: Repository;
let snap: SnapshotInfo;

beforeEach(async () => {
  dir = await tempDir('dp-damage-');
  repo = await newRepo(dir.path);
  const src = join(dir.path, 'src');
  await mkdir(src);
  for (let i = 0; i < 10; i++) await writeFile(join(src, `m${i}`), bytesOf(i, 20_000, true));
  const a = new Archiver(repo, { server: 's', tag: 'mail/imap' });
  await a.addTree('/spool', src);
  snap = await a.commit();
});
afterEach(async () => {
  await repo.close();
  await dir.cleanup();
});

async function dataPackPath(): Promise<string> {
  for (const [name, types] of await packTypes(repo)) if (types.has(BlobType.Data)) return join(dir.path, 'repo/data', name.slice(0, 2), name);
  throw new Error('no data pack');
}

test.each([
  ['on this thread', true],
  ['on the codec workers', false],
])('a corrupted byte in a pack is found by check --read-data and reported by restore (verified and written %s)', async (_where, inline) => {
  const pack = await dataPackPath();
  const fh = await open(pack, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, 100);
  b[0] ^= 0xff;
  await fh.write(b, 0, 1, 100);
  await fh.close();

  const structural = await check(repo);
  expect(structural.errors).toEqual([]); // sizes still match: only reading the data can tell
  // packsHere: this thread takes the first pack (its lane comes first), the workers the others.
  const full = await check(repo, { readData: true, packsHere: inline });
  expect(full.errors.some((e) => e.includes('content does not match its name'))).toBe(true);
  expect(full.errors.some((e) => /blob [0-9a-f]{12} at \d+: (content does not match its id|cannot decompress)/.test(e))).toBe(true);

  const r = await restore(repo, snap, { target: join(dir.path, 'out'), inline });
  expect(r.damage.length).toBeGreaterThan(0);
  expect(r.damage[0]).toMatch(/pack [0-9a-f]{12}/);
  // The other messages are still restored.
  expect(r.files).toBe(10 - r.damage.length);

  const cli = await runCli(['check', '--repo', join(dir.path, 'repo'), '--read-data', '--json']);
  expect(cli.code).toBe(12);
  expect(jsonLines(cli.stdout).find((l) => l.type === 'summary')!.ok).toBe(false);
  const cliRestore = await runCli(['restore', 'latest', '--repo', join(dir.path, 'repo'), '--target', join(dir.path, 'out2')]);
  expect(cliRestore.code).toBe(12);
  expect(cliRestore.stderr).toMatch(/does not match its id|cannot decompress/);
});

test.each([
  ['on this thread', true],
  ['on the codec workers', false],
])('a truncated pack is found by a plain check and reported by restore (written %s)', async (_where, inline) => {
  const pack = await dataPackPath();
  await truncate(pack, (await stat(pack)).size - 1000);
  const c = await check(repo);
  expect(c.errors.some((e) => e.includes('truncated or damaged'))).toBe(true);
  const r = await restore(repo, snap, { target: join(dir.path, 'out'), inline });
  expect(r.damage.length).toBeGreaterThan(0);
});

test('a missing pack makes check report lost data', async () => {
  const pack = await dataPackPath();
  const { rm } = await import('node:fs/promises');
  await rm(pack);
  const c = await check(repo);
  expect(c.errors.some((e) => e.includes('missing'))).toBe(true);
});

test('a tree that names an entry ".." is refused: a restore never leaves its target', async () => {
  const { encodeTree } = await import('../../server/engine/tree.js');
  const { sha256, toHex } = await import('../../server/engine/hash.js');
  const { BlobSaver } = await import('../../server/engine/saver.js');
  const evilContent = Buffer.from('owned');
  const contentId = sha256(evilContent);
  const base = { type: 'file' as const, mode: 0o644, uid: 0, gid: 0, size: 5, mtime: '0', ctime: '0', inode: '0', device: '0', links: 1, content: [toHex(contentId)] };
  const tree = encodeTree({ nodes: [{ ...base, name: '..' }] });
  const treeId = sha256(tree);
  const saver = new BlobSaver(repo);
  await saver.save(BlobType.Data, contentId, evilContent);
  await saver.save(BlobType.Tree, treeId, tree);
  await saver.flush();
  const evil = { ...snap, tree: toHex(treeId) };
  const target = join(dir.path, 'target');
  await expect(restore(repo, evil, { target })).rejects.toBeInstanceOf(RepositoryDamagedError);
  expect(await readdir(dir.path)).not.toContain('..');
  await expect(stat(join(dir.path, 'owned'))).rejects.toThrow();
});
