import { readdir } from 'node:fs/promises';
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
