import { Readable } from 'node:stream';
import { sha256, toHex } from './hash.js';
import { RepositoryDamagedError } from './errors.js';
import type { Repository } from './repository.js';
import type { TreeNode } from './tree.js';

/**
 * Streams a file node's content, blob by blob, verified, reading a few blobs ahead so that storage latency
 * overlaps with the consumer. For callers that already hold the node (a walk over a tree): no path lookup.
 * Fails when the blobs do not add up to the size the tree records.
 */
export function openContent(repo: Repository, node: TreeNode): Readable {
  async function* blobs(): AsyncGenerator<Buffer> {
    const ids = node.content ?? [];
    const ahead: Promise<Buffer>[] = [];
    let next = 0;
    let total = 0;
    while (next < ids.length || ahead.length) {
      while (ahead.length < 4 && next < ids.length) {
        const p = repo.readBlob(ids[next++]);
        p.catch(() => {});
        ahead.push(p);
      }
      const b = await ahead.shift()!;
      total += b.length;
      yield b;
    }
    if (total !== node.size) throw new RepositoryDamagedError(`${node.name}: content is ${total} bytes, the tree says ${node.size}`);
  }
  return Readable.from(blobs(), { objectMode: false });
}

/** A digest of a file node's content (its blob ids in order): equal digests, equal bytes. */
export function contentDigest(node: TreeNode): string {
  return toHex(sha256(Buffer.from((node.content ?? []).join('\n'))));
}
