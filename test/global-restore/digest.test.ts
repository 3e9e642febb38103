import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archiver, findNode, Repository, type SnapshotInfo } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { fileBlobIds } from '../../server/dataprotect/global-restore/digest.js';

// The rehearsal's content check recomputes a restored file's blob ids: they must come out as the backup cut them,
// for a small file (one blob), a mail message (cut at its base64 body), an empty one, and a large one cut into many blobs.

let dir: string;
let repo: Repository;
let snap: SnapshotInfo;
const sizes = { empty: 0, small: 20_000, large: 9 * 1024 * 1024 + 123 };

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dp-digest-'));
  repo = await Repository.init(new LocalStorage(path.join(dir, 'repo')));
  await mkdir(path.join(dir, 'src'));
  for (const [name, size] of Object.entries(sizes)) await writeFile(path.join(dir, 'src', name), randomBytes(size));
  const body = randomBytes(30_000).toString('base64').replace(/.{76}/g, '$&\r\n');
  await writeFile(path.join(dir, 'src', 'message'), `Subject: s\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n${body}\r\n--b--\r\n`);
  const a = new Archiver(repo, { server: 's', tag: 'filehosting/data' });
  await a.addTree('/files', path.join(dir, 'src'));
  snap = await a.commit();
});
afterAll(async () => {
  await repo?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('blob ids of a restored file', () => {
  it('equal the ids the backup recorded, and differ once a byte changes', async () => {
    for (const name of [...Object.keys(sizes), 'message']) {
      const node = await findNode(repo, snap, `/files/${name}`);
      expect(await fileBlobIds(repo, path.join(dir, 'src', name), node.content ?? []), name).toEqual(node.content ?? []);
    }
    expect((await findNode(repo, snap, '/files/message')).content).toHaveLength(3);
    expect((await findNode(repo, snap, '/files/large')).content!.length).toBeGreaterThan(2);
    const file = path.join(dir, 'src', 'large');
    const bytes = await readFile(file);
    bytes[5_000_000] ^= 1;
    await writeFile(file, bytes);
    const recorded = (await findNode(repo, snap, '/files/large')).content!;
    expect(await fileBlobIds(repo, file, recorded)).not.toEqual(recorded);
  });
});
