import { createHash } from 'node:crypto';
import { mkdir, open, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { BlobType } from '../../server/engine/blob-index.js';
import { Archiver, type Repository } from '../../server/engine/index.js';
import { PackFile, packFindings, packInMemory, type PackSource } from '../../server/engine/pack-check.js';
import type { PackEntry } from '../../server/engine/pack.js';
import { bytesOf, newRepo, packTypes, tempDir } from './helpers.js';

let dir: { path: string; cleanup: () => Promise<void> };
let repo: Repository;

beforeEach(async () => {
  dir = await tempDir('dp-pack-check-');
  repo = await newRepo(dir.path);
  const src = join(dir.path, 'src');
  await mkdir(src);
  // Small messages and one large file: blobs far smaller and far larger than the window below.
  for (let i = 0; i < 20; i++) await writeFile(join(src, `m${i}`), bytesOf(i, 3_000 + i * 700, true));
  await writeFile(join(src, 'big'), bytesOf(99, 3 * 1024 * 1024));
  const a = new Archiver(repo, { server: 's', tag: 'files' });
  await a.addTree('/spool', src);
  await a.commit();
});
afterEach(async () => {
  await repo.close();
  await dir.cleanup();
});

async function dataPack(): Promise<{ name: string; path: string; blobs: number }> {
  for (const [name, types] of await packTypes(repo)) {
    if (!types.has(BlobType.Data)) continue;
    const entries = await repo.readPackHeader(name, (await repo.storage.stat('data', name))!.size);
    return { name, path: join(dir.path, 'repo/data', name.slice(0, 2), name), blobs: entries.length };
  }
  throw new Error('no data pack');
}

/** The findings, and what each blob's stored bytes hashed to, as the verifier saw them. */
function findings(name: string, source: PackSource, indexed: number | null): { found: string[]; seen: string[] } {
  const seen: string[] = [];
  const found = packFindings(name, source, indexed, repo.limits, repo.cipher, (stored: Buffer, e: PackEntry) => {
    seen.push(`${e.offset}+${e.length}:${createHash('sha256').update(stored).digest('hex')}`);
    return e.offset === 1 ? 'first blob flagged' : null;
  });
  return { found, seen };
}

/** The same pack through a small window (grown for blobs larger than it) and whole in memory. */
async function both(name: string, path: string, indexed: number | null): Promise<{ found: string[]; seen: string[] }> {
  const file = new PackFile(path, Buffer.alloc(4096));
  let windowed;
  try {
    windowed = findings(name, file, indexed);
  } finally {
    file.close();
  }
  const whole = findings(name, packInMemory(await readFile(path)), indexed);
  expect(windowed).toEqual(whole);
  return whole;
}

test('a pack read through a small window hands every blob over exactly as the whole pack does', async () => {
  const { name, path, blobs } = await dataPack();
  const r = await both(name, path, blobs);
  expect(r.seen).toHaveLength(blobs);
  expect(r.found).toHaveLength(1);
  expect(r.found[0]).toMatch(new RegExp(`^pack ${name.slice(0, 12)}: blob [0-9a-f]{12} at 1: first blob flagged$`));
  // And a blob larger than the window went through whole.
  expect(r.seen.some((s) => Number(s.split(/[+:]/)[1]) > 4096)).toBe(true);
});

test('a damaged byte, a wrong blob count, a pack no index lists and a truncated pack: the same findings either way', async () => {
  const { name, path, blobs } = await dataPack();
  const what = `pack ${name.slice(0, 12)}`;
  const notItsName = `${what}: content does not match its name (damaged)`;

  expect((await both(name, path, blobs + 1)).found).toContain(`${what}: header lists ${blobs} blobs, index ${blobs + 1}`);
  expect((await both(name, path, null)).found).toEqual([]);

  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, 2000);
  b[0] ^= 0xff;
  await fh.write(b, 0, 1, 2000);
  await fh.close();
  const damaged = await both(name, path, blobs);
  expect(damaged.found[0]).toBe(notItsName);
  expect((await both(name, path, null)).found).toEqual([`${what}: content does not match its name (damaged, and no index lists it: prune removes it)`]);

  const size = (await readFile(path)).length;
  await truncate(path, size - 10);
  const truncated = await both(name, path, blobs);
  expect(truncated.found[0]).toBe(notItsName);
  expect(truncated.found).toHaveLength(2);
  expect(truncated.seen).toEqual([]);

  await truncate(path, 3);
  expect((await both(name, path, blobs)).found).toEqual([notItsName, `${what}: truncated at 3 bytes, no header`]);
});

test('a local pack that shrinks while it is read is an error, not a short verdict', async () => {
  const { name, path, blobs } = await dataPack();
  const file = new PackFile(path, Buffer.alloc(4096));
  try {
    await truncate(path, 100);
    expect(() => findings(name, file, blobs)).toThrow(/unexpected end/);
  } finally {
    file.close();
  }
});
