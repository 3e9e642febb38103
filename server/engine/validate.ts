import binding from 'zstd-napi/binding.js';
import { BlobType, type BlobLocation } from './blob-index.js';
import { SEAL_OVERHEAD } from './crypto.js';
import type { RepositoryConfig } from './format.js';
import { isHexId } from './hash.js';
import type { TreeNode } from './tree.js';

/**
 * What a blob or a tree node may declare, checked the same way by `check` and by a restore, so that
 * check finds what would make a restore fail, and a hostile repository cannot make either allocate
 * more than a blob can legitimately hold.
 */

/** No chunker cuts blobs above this (validChunker), whatever a repository's config says. */
export const MAX_DATA_BLOB = 64 * 1024 * 1024;
/** A tree (one directory's JSON) is never cut: a huge directory makes a big one, but not bigger than this. */
export const MAX_TREE_BLOB = 1024 * 1024 * 1024;
/**
 * Trees are JSON full of hashes, inodes and times: they shrink at most a few times under zstd. A tree
 * declaring much more than this ratio of its stored bytes is a decompression bomb, not a directory.
 */
const TREE_RATIO = 64;
const TREE_SLACK = 64 * 1024;
/**
 * The largest tree compressed with a dictionary (an earlier version of itself), and so the largest such
 * dictionary: what a tree of compression 2 may declare beyond the ratio above (a tree that repeats its
 * dictionary with few changes shrinks to almost nothing).
 */
export const MAX_DICTIONARY_TREE = 16 * 1024 * 1024;

export interface BlobLimits {
  /** Most raw bytes a data blob can have: the largest chunk this repository's chunkers cut. */
  data: number;
  /** Bytes encryption adds to every stored blob (nonce and tag; 0 in a plain repository). */
  overhead: number;
}

export function blobLimits(config: Partial<RepositoryConfig>, encrypted = false): BlobLimits {
  const c = config.chunkers;
  const declared = Math.max(c?.file?.max ?? 0, c?.file?.min ?? 0, c?.stream?.max ?? 0, c?.rows?.max ?? 0);
  return { data: Number.isSafeInteger(declared) && declared > 0 ? Math.min(declared, MAX_DATA_BLOB) : MAX_DATA_BLOB, overhead: encrypted ? SEAL_OVERHEAD : 0 };
}

/** Why a blob's declared sizes cannot be right (index or pack header), or null. Checked before any allocation. */
export function blobProblem(loc: Pick<BlobLocation, 'type' | 'zstd' | 'length' | 'rawLength' | 'dictionary'>, limits: BlobLimits): string | null {
  const raw = loc.rawLength;
  const sealed = limits.overhead;
  if (loc.length < sealed) return `stored in ${loc.length} bytes, fewer than encryption adds (${sealed})`;
  // From here on, `length` is what the stored bytes are once decrypted.
  loc = { ...loc, length: loc.length - sealed };
  if (!loc.zstd) return raw === loc.length ? null : `stored uncompressed in ${loc.length} bytes but declares ${raw} bytes`;
  if (loc.length === 0) return `compressed but stored in 0 bytes`;
  if (loc.type === BlobType.Tree) {
    const cap = Math.min(MAX_TREE_BLOB, loc.length * TREE_RATIO + TREE_SLACK + (loc.dictionary !== undefined ? MAX_DICTIONARY_TREE : 0));
    return raw > cap ? `tree declares ${raw} bytes once decompressed from ${loc.length}: more than a tree can be (at most ${cap})` : null;
  }
  return raw > limits.data ? `declares ${raw} bytes once decompressed, more than this repository's largest chunk (${limits.data})` : null;
}

/** Why a zstd frame cannot be the blob its index describes (the frame header's own content size), or null. */
export function frameProblem(stored: Uint8Array, rawLength: number): string | null {
  let size: number | null;
  try {
    size = binding.getFrameContentSize(stored);
  } catch {
    return 'not a zstd frame';
  }
  return size !== null && size !== rawLength ? `zstd frame holds ${size} bytes, index says ${rawLength}` : null;
}

/**
 * Decompresses into a buffer of exactly the declared size (bounded by blobProblem): a frame that would
 * grow past it fails instead of allocating.
 */
export function decompressBounded(dctx: InstanceType<typeof binding.DCtx>, stored: Uint8Array, rawLength: number, into?: Buffer, dictionary?: InstanceType<typeof binding.DDict>): Buffer {
  const problem = frameProblem(stored, rawLength);
  if (problem) throw new Error(problem);
  const out = into && into.length >= rawLength ? into.subarray(0, rawLength) : Buffer.allocUnsafe(rawLength);
  const n = dictionary ? dctx.decompressUsingDDict(out, stored, dictionary) : dctx.decompress(out, stored);
  if (n !== rawLength) throw new Error(`decompressed to ${n} bytes, index says ${rawLength}`);
  return out;
}

const TYPES: ReadonlySet<string> = new Set(['file', 'dir', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev']);
/** 1 to 20 decimal digits, after a minus sign when `signed` allows one (/^-?\d{1,20}$/, without a regular expression: called for every node read). */
function isDecimal(s: unknown, signed: boolean): boolean {
  if (typeof s !== 'string') return false;
  const from = signed && s.charCodeAt(0) === 45 ? 1 : 0;
  const digits = s.length - from;
  if (digits < 1 || digits > 20) return false;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}
const isUint32 = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;

/** Why a tree node cannot be restored as it is (wrong types, out-of-range fields), or null. The name is checked apart. */
export function nodeProblem(n: TreeNode): string | null {
  if (typeof n.type !== 'string' || !TYPES.has(n.type)) return `unknown type ${JSON.stringify(n.type)}`;
  if (!Number.isInteger(n.mode) || n.mode < 0 || n.mode > 0o7777) return `bad mode ${JSON.stringify(n.mode)}`;
  if (!isUint32(n.uid) || !isUint32(n.gid)) return `bad owner ${JSON.stringify(n.uid)}:${JSON.stringify(n.gid)}`;
  if (!Number.isSafeInteger(n.size) || n.size < 0) return `bad size ${JSON.stringify(n.size)}`;
  if (!isDecimal(n.mtime, true)) return `bad mtime ${JSON.stringify(n.mtime)}`;
  if (!isDecimal(n.ctime, true)) return `bad ctime ${JSON.stringify(n.ctime)}`;
  if (!isDecimal(n.inode, false) || !isDecimal(n.device, false)) return `bad inode or device`;
  if (!isUint32(n.links)) return `bad link count ${JSON.stringify(n.links)}`;
  if (n.dictionary !== undefined && (n.type !== 'file' || !isHexId(n.dictionary))) return 'dictionary is not a blob id of a file';
  if (n.content !== undefined && (n.type !== 'file' || !Array.isArray(n.content) || !n.content.every(isHexId))) {
    return n.type === 'file' ? 'content is not a list of blob ids' : `a ${n.type} with content`;
  }
  if (n.subtree !== undefined && (n.type !== 'dir' || !isHexId(n.subtree))) return n.type === 'dir' ? 'subtree is not a tree id' : `a ${n.type} with a subtree`;
  if (n.type === 'symlink' && (typeof n.target !== 'string' || n.target.includes('\0'))) return 'symlink without a valid target';
  return null;
}

/** Why a file's blobs cannot add up to the size its node records, or null. */
export function contentSizeProblem(node: TreeNode, rawLengths: readonly number[]): string | null {
  let total = 0;
  for (const r of rawLengths) total += r;
  return total === node.size ? null : `content is ${total} bytes, the tree says ${node.size}`;
}
