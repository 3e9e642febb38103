import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { LocalStorage } from '../../server/storage/index.js';
import { tempDir } from '../engine/helpers.js';
import { storageConformance } from './conformance.js';

storageConformance('local directory', async () => {
  const d = await tempDir('dp-storage-');
  return { storage: new LocalStorage(join(d.path, 'repo')), cleanup: d.cleanup };
});

test('local storage spreads packs over data/00..ff and leaves no temp file behind', async () => {
  const d = await tempDir('dp-storage-');
  const s = new LocalStorage(join(d.path, 'repo'));
  await s.write('data', 'ab' + '0'.repeat(62), Buffer.from('x'));
  expect(await readdir(join(d.path, 'repo/data'))).toEqual(['ab']);
  expect(await readdir(join(d.path, 'repo/data/ab'))).toEqual(['ab' + '0'.repeat(62)]);
  await d.cleanup();
});

test('a reference sits beside config, where scripts read it, and is not listed with the repository files', async () => {
  const d = await tempDir('dp-storage-');
  const s = new LocalStorage(join(d.path, 'repo'));
  await s.write('config', 'config', Buffer.from('cfg'));
  await s.write('data', 'ab' + '0'.repeat(62), Buffer.from('x'));
  await s.write('reference', 'latest', Buffer.from('{"generation":null}\n'));
  expect(await readFile(join(d.path, 'repo/latest'), 'utf8')).toBe('{"generation":null}\n');
  const refs: string[] = [];
  for await (const f of s.list('reference')) refs.push(f.name);
  expect(refs).toEqual(['latest']);
  await d.cleanup();
});

test('temp files of a writer that died are removed, those of a live writer are left', async () => {
  const d = await tempDir('dp-storage-');
  const s = new LocalStorage(join(d.path, 'repo'));
  await s.write('data', 'ab' + '0'.repeat(62), Buffer.from('x'));
  const dead = join(d.path, 'repo/data/ab', `.tmp-${'ab' + '1'.repeat(62)}-${2 ** 22 + 4321}-0badf00d`);
  const live = join(d.path, 'repo', `.tmp-latest-${process.pid}-0badf00d`);
  await writeFile(dead, 'half');
  await writeFile(live, 'being written');
  expect(await s.removeStaleTempFiles()).toBe(1);
  expect(await readdir(join(d.path, 'repo/data/ab'))).toEqual(['ab' + '0'.repeat(62)]);
  expect(await readFile(live, 'utf8')).toBe('being written');
  await d.cleanup();
});
