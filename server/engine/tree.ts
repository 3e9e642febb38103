import { UnsafeTreeError } from './errors.js';
import { RepositoryDamagedError } from './errors.js';
import { nodeProblem } from './validate.js';

export type NodeType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';

/**
 * One entry of a directory. Times are integer nanoseconds since the epoch, as decimal strings
 * (they exceed 2^53); inode and device too. No atime: reading a file changes it, and it would make
 * every tree new at every backup.
 */
export interface TreeNode {
  name: string;
  type: NodeType;
  /** Permission bits and set-id/sticky bits (st_mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: string;
  ctime: string;
  inode: string;
  device: string;
  /** Hard link count at backup time: files with links > 1 and the same (device, inode) restore as one. */
  links: number;
  /** Symlink target. */
  target?: string;
  /** Data blob ids (hex) of a file, in order. */
  content?: string[];
  /** Tree blob id (hex) of a directory. */
  subtree?: string;
  /**
   * A stream's dictionary (version 3): the blob whose bytes its new chunks were compressed with, which the
   * next backup of the same path compresses with again (so the same chunks keep the same bytes).
   */
  dictionary?: string;
}

export interface Tree {
  nodes: TreeNode[];
}

/** Version byte of tree blobs: the same in every repository format so far. */
export const TREE_VERSION = 1;

/** A tree blob: [version u8] + JSON. Node order is by name, so equal directories give equal blobs. */
export function encodeTree(tree: Tree): Buffer {
  // The version byte as the string's first character (below 0x80: one byte of UTF-8), encoded with the JSON at once.
  return Buffer.from(String.fromCharCode(TREE_VERSION) + JSON.stringify(tree));
}

export function decodeTree(raw: Buffer, id: string): Tree {
  const tree = parseTree(raw, id);
  const seen = new Set<string>();
  for (const n of tree.nodes) {
    checkName(n, id);
    if (seen.has(n.name)) throw new UnsafeTreeError(`tree ${id.slice(0, 12)}: name ${JSON.stringify(n.name)} appears twice`);
    seen.add(n.name);
    checkFields(n, id);
  }
  return tree;
}

/**
 * The entry `name` of a tree blob (undefined when there is none), checked as decodeTree checks each entry, the
 * others only parsed: a walk down to one path (`restore --include`) passes directories of thousands of entries
 * (a spool's mailboxes) and restores one of them. It appearing twice is damage, as in decodeTree.
 */
export function decodeTreeEntry(raw: Buffer, id: string, name: string): TreeNode | undefined {
  let found: TreeNode | undefined;
  for (const n of parseTree(raw, id).nodes) {
    if (typeof n !== 'object' || n === null || n.name !== name) continue;
    if (found) throw new UnsafeTreeError(`tree ${id.slice(0, 12)}: name ${JSON.stringify(n.name)} appears twice`);
    checkName(n, id);
    checkFields(n, id);
    found = n;
  }
  return found;
}

function parseTree(raw: Buffer, id: string): Tree {
  const version = raw[0];
  if (version === undefined || version === 0 || version > TREE_VERSION) {
    throw new RepositoryDamagedError(`tree ${id.slice(0, 12)}: format version ${version} is not supported`);
  }
  let tree: Tree;
  try {
    tree = JSON.parse(raw.subarray(1).toString('utf8')) as Tree;
  } catch {
    throw new RepositoryDamagedError(`tree ${id.slice(0, 12)}: not valid JSON`);
  }
  if (!tree || !Array.isArray(tree.nodes)) throw new RepositoryDamagedError(`tree ${id.slice(0, 12)}: no node list`);
  return tree;
}

function checkName(n: TreeNode, id: string): void {
  if (typeof n !== 'object' || n === null || Array.isArray(n)) throw new RepositoryDamagedError(`tree ${id.slice(0, 12)}: an entry is not an object`);
  assertSafeName(n.name, id);
}

function checkFields(n: TreeNode, id: string): void {
  // The same check as `check`'s: what a restore could not apply is damage, found before anything is written.
  const problem = nodeProblem(n);
  if (problem) throw new RepositoryDamagedError(`tree ${id.slice(0, 12)}: entry ${JSON.stringify(n.name)}: ${problem}`);
}

/** A name a restore can create inside its target: never a path, never `.` or `..`. */
function assertSafeName(name: unknown, treeId: string): asserts name is string {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new UnsafeTreeError(`tree ${treeId.slice(0, 12)}: refusing entry name ${JSON.stringify(name)} (it would leave the restore target)`);
  }
}

/** Whether two nodes hold the same fields with the same values (a directory's entry unchanged since the parent snapshot). */
export function sameNode(a: TreeNode, b: TreeNode): boolean {
  const keys = Object.keys(a) as (keyof TreeNode)[];
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) {
    const x = a[k];
    const y = b[k];
    if (x === y) continue;
    if (!Array.isArray(x) || !Array.isArray(y) || x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  }
  return true;
}

export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Splits a snapshot path ("/var/spool/x" or "var/spool/x") into safe components. */
export function splitPath(path: string): string[] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  for (const p of parts) if (p === '..') throw new UnsafeTreeError(`path ${JSON.stringify(path)} contains '..'`);
  return parts;
}
