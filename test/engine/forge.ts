import { BlobType } from '../../server/engine/blob-index.js';
import { sha256, toHex } from '../../server/engine/hash.js';
import type { Repository, SnapshotInfo, TreeNode } from '../../server/engine/index.js';
import { BlobSaver } from '../../server/engine/saver.js';
import { encodeTree } from '../../server/engine/tree.js';
import { PackBuilder } from '../../server/engine/pack.js';

/**
 * Hostile repositories for tests: trees written with the engine's own writer, as an attacker with write
 * access to the repository could. A spec is a directory: name -> file content, a nested spec, or a node.
 */
export type ForgedEntry = string | Buffer | ForgedDir | { node: Partial<TreeNode> & { type: TreeNode['type'] }; content?: Buffer | Buffer[] };
export interface ForgedDir {
  [name: string]: ForgedEntry;
}

const BASE = { mode: 0o644, uid: 0, gid: 0, size: 0, mtime: '1700000000000000000', ctime: '1700000000000000000', inode: '0', device: '0', links: 1 };

export async function forgeTree(saver: BlobSaver, spec: ForgedDir): Promise<string> {
  const nodes: TreeNode[] = [];
  for (const name of Object.keys(spec).sort()) {
    const e = spec[name];
    if (typeof e === 'string' || Buffer.isBuffer(e)) {
      const data = Buffer.from(e);
      nodes.push({ ...BASE, name, type: 'file', size: data.length, content: data.length ? [await saveData(saver, data)] : [] });
    } else if ('node' in e && typeof e.node === 'object' && e.node !== null && 'type' in e.node) {
      const node = { ...BASE, name, ...(e.node as Partial<TreeNode>) } as TreeNode;
      if (e.content && node.content === undefined) {
        const pieces = Array.isArray(e.content) ? e.content : [e.content as Buffer];
        node.content = [];
        for (const c of pieces) node.content.push(await saveData(saver, c));
        if (e.node.size === undefined) node.size = pieces.reduce((a, c) => a + c.length, 0);
      }
      nodes.push(node);
    } else {
      nodes.push({ ...BASE, name, type: 'dir', mode: 0o755, subtree: await forgeTree(saver, e as ForgedDir) });
    }
  }
  const tree = encodeTree({ nodes });
  const id = sha256(tree);
  await saver.save(BlobType.Tree, id, tree);
  return toHex(id);
}

async function saveData(saver: BlobSaver, data: Buffer): Promise<string> {
  const id = sha256(data);
  await saver.save(BlobType.Data, id, data);
  return toHex(id);
}

/** A snapshot (not saved: restore and check take it as it is) whose tree is the forged `spec`. */
export async function forgeSnapshot(repo: Repository, like: SnapshotInfo, spec: ForgedDir): Promise<SnapshotInfo> {
  const saver = new BlobSaver(repo);
  const tree = await forgeTree(saver, spec);
  await saver.flush();
  return { ...like, tree };
}

/** The same, saved in the repository (for `check`). */
export async function saveForgedSnapshot(repo: Repository, like: SnapshotInfo, spec: ForgedDir): Promise<SnapshotInfo> {
  const s = await forgeSnapshot(repo, like, spec);
  const { id: _id, ...rest } = s;
  const id = await repo.saveSnapshot(rest);
  return { ...s, id };
}

/**
 * A data pack written by hand, with whatever sizes its index declares: `stored` is what the pack holds
 * (zstd or raw), `id` the blob id (by default the SHA-256 of `raw`), `rawLength` what the index claims.
 */
export async function forgePack(repo: Repository, blobs: { raw: Buffer; stored: Buffer; zstd: boolean; rawLength: number }[]): Promise<string[]> {
  const b = new PackBuilder();
  const ids: string[] = [];
  for (const x of blobs) {
    const id = sha256(x.raw);
    b.add(id, BlobType.Data, x.stored, x.zstd, x.rawLength);
    ids.push(toHex(id));
  }
  const parts = b.finish();
  const pack = toHex(sha256(parts));
  await repo.writePack(pack, parts);
  const packs = [{ id: pack, blobs: b.entries }];
  const name = await repo.writeIndex(packs);
  repo.indexFiles.delete(name);
  repo.addIndexFile(name, { supersedes: [], packs });
  return ids;
}
