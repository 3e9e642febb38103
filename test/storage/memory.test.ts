import { expect, test } from 'vitest';
import { Archiver, check, openFile, Repository } from '../../server/engine/index.js';
import { MemoryStorage } from '../../server/storage/index.js';
import { storageConformance } from './conformance.js';

storageConformance('in memory', async () => ({ storage: new MemoryStorage(), cleanup: async () => {} }));

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(parts);
}

test('a repository in memory backs up, reads back, checks clean, keeps references and forgets snapshots', async () => {
  const repo = await Repository.init(new MemoryStorage('memory:unit'));
  try {
    const archiver = new Archiver(repo, { server: 'bm-master', tag: 'bm/conf', parent: 'none' });
    const body = Buffer.from('domain=example.org\n'.repeat(1000));
    await archiver.addBytes('/etc/bm/bm.ini', body);
    const snap = await archiver.commit();
    expect((await readAll(openFile(repo, snap, '/etc/bm/bm.ini'))).equals(body)).toBe(true);
    expect((await check(repo, { readData: true })).errors).toEqual([]);

    expect(await repo.readReference('latest')).toBeNull();
    await repo.writeReference('latest', Buffer.from(snap.id));
    expect((await repo.readReference('latest'))?.toString()).toBe(snap.id);

    await repo.deleteSnapshot(snap.id);
    expect(await repo.listSnapshots()).toEqual([]);
    await expect(repo.findSnapshot('latest')).rejects.toThrow(/no snapshot in memory:unit/);
  } finally {
    await repo.close();
  }
});
