// A restored file's content against the generation's: its bytes cut and hashed the way the backup cut them, so
// that the blob ids (keyed in an encrypted repository) come out equal to those the tree records exactly when the bytes are the same. Reads the file
// once and never the repository.

import { createReadStream, promises as fs } from 'node:fs';
import { fileCuts, StreamChunker, toHex, type Repository } from '../../engine/index.js';

/**
 * The data blob ids `file` would have in `repo`, given its content in the generation (`recorded`): a file below
 * the chunker's maximum is read whole and cut as the backup cuts it (chunker.ts fileCuts), or as versions that did
 * not cut mail messages at their bodies did, when that is what the generation holds.
 */
export async function fileBlobIds(repo: Repository, file: string, recorded: readonly string[]): Promise<string[]> {
  const params = repo.chunker('file');
  const { size } = await fs.stat(file);
  if (size === 0) return [];
  if (size < params.max) {
    const data = await fs.readFile(file);
    const idsOf = (cuts: number[]) => cuts.map((end, i) => toHex(repo.blobId(data.subarray(i ? cuts[i - 1] : 0, end))));
    const ids = idsOf(fileCuts(repo.gear, data, params));
    return sameContent(ids, recorded) ? ids : idsOf(fileCuts(repo.gear, data, params, false));
  }
  const chunker = new StreamChunker(repo.gear, params);
  const ids: string[] = [];
  for await (const piece of createReadStream(file, { highWaterMark: 1 << 20 })) {
    for (const c of chunker.push(piece as Buffer)) ids.push(toHex(repo.blobId(c)));
  }
  for (const c of chunker.end()) ids.push(toHex(repo.blobId(c)));
  return ids;
}

export function sameContent(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}
