// Files of a snapshot whose lines are sorted by a key at their start (a database part's users files, the
// manifest's entity list): one line found by halving, with a few small reads, instead of reading the file.

import { readFileBytes, type Repository, type SnapshotInfo } from '../engine/index.js';

/** Bytes read by one step of the search: a few lines (a user's record or an entity is a kilobyte or two). */
const PROBE_BYTES = 8 * 1024;

/** The line that starts at `at` (without its newline), reading up to `to` at most. */
export async function readLine(repo: Repository, snapshot: SnapshotInfo, path: string, at: number, to: number): Promise<Buffer> {
  let bytes = PROBE_BYTES;
  for (;;) {
    const end = Math.min(to, at + bytes);
    const buf = await readFileBytes(repo, snapshot, path, { start: at, end });
    const nl = buf.indexOf(10);
    if (nl >= 0) return buf.subarray(0, nl);
    if (end >= to) return buf;
    bytes *= 4;
  }
}

/**
 * The key of a line that starts `{"uid":"…",` (a users file's, a sorted manifest entity's): the uid, or null
 * when `line` does not start so (or is cut before the uid's end). A JSON string holds no unescaped `"`, so its
 * end is the first `","` after its start.
 */
export function uidKey(line: Buffer): string | null {
  const open = '{"uid":"';
  if (line.length < open.length || line.toString('latin1', 0, open.length) !== open) return null;
  const end = line.indexOf('","', open.length);
  if (end < 0) return null;
  try {
    return JSON.parse(line.toString('utf8', open.length - 1, end + 1)) as string;
  } catch {
    return null;
  }
}

/**
 * In the bytes [from, to) of a file of a snapshot (`from` a line's start), lines sorted by `keyOf` (JavaScript's
 * string order), the line whose key is `key` (without its newline), or null. Each step reads PROBE_BYTES in the
 * middle of what is left and compares the first line that starts there: a line of 100,000 takes some 20 reads
 * of a blob or two. A probe without a whole key (a very long line) narrows from the right; the last lines are
 * read one by one up to the key or past it.
 */
export async function findSortedLine(
  repo: Repository, snapshot: SnapshotInfo, path: string, from: number, to: number, key: string, keyOf: (line: Buffer) => string | null,
): Promise<Buffer | null> {
  let lo = from;
  let hi = to;
  while (hi - lo > PROBE_BYTES) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const buf = await readFileBytes(repo, snapshot, path, { start: mid, end: Math.min(to, mid + PROBE_BYTES) });
    const nl = buf.indexOf(10);
    const k = nl < 0 ? null : keyOf(buf.subarray(nl + 1));
    if (k !== null && k < key) lo = mid + nl + 1;
    else hi = mid;
  }
  // The last lines, from one read (another only for a line that goes past it).
  let buf: Buffer = Buffer.alloc(0);
  let bufAt = lo;
  for (let at = lo; at < to; ) {
    const nl = buf.indexOf(10, at - bufAt);
    if (nl < 0 && bufAt + buf.length < to) {
      const want = Math.max(2 * PROBE_BYTES, 4 * (bufAt + buf.length - at));
      buf = await readFileBytes(repo, snapshot, path, { start: at, end: Math.min(to, at + want) });
      bufAt = at;
      continue;
    }
    const end = nl < 0 ? buf.length : nl;
    const line = buf.subarray(at - bufAt, end);
    const k = keyOf(line);
    if (k === key) return line;
    if (k === null || k > key) return null;
    at = bufAt + end + 1;
  }
  return null;
}
