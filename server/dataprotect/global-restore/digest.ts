// A restored file's content against the generation's: its bytes cut and hashed the way the backup cut them, so
// that the blob ids (keyed in an encrypted repository) come out equal to those the tree records exactly when the bytes are the same. Reads the file
// once and never the repository.

import { createReadStream, promises as fs } from 'node:fs';
import { StreamChunker, toHex, type Repository } from '../../engine/index.js';

/** The data blob ids `file` would have in `repo` (a file below the chunker's minimum is one blob). */
export async function fileBlobIds(repo: Repository, file: string): Promise<string[]> {
  const params = repo.chunker('file');
  const { size } = await fs.stat(file);
  if (size === 0) return [];
  if (size < params.min) return [toHex(repo.blobId(await fs.readFile(file)))];
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
