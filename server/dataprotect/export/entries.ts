// What an export of a generation holds, in the order a tar stream or a folder writes it: one folder per part
// (`SERVER/TAG/...`), then each part's files as a restore of that part would lay them out.

import { NotFoundError, type Repository, type SnapshotInfo, type TreeNode } from '../../engine/index.js';
import type { StoredGeneration } from '../generation/format.js';

export interface ExportPart {
  server: string;
  tag: string;
  snapshot: SnapshotInfo;
}

export interface ExportEntry {
  /** Relative path in the export, `/`-separated, no leading slash. */
  path: string;
  type: 'dir' | 'file' | 'symlink' | 'hardlink';
  node: TreeNode;
  /** hardlink: the path (in the export) of the file it is another name of. */
  linkTo?: string;
  /** The part the entry belongs to; null for the folders above the parts. */
  part: ExportPart | null;
}

/** `SERVER:TAG` of `--part`. */
export function parsePartRef(ref: string): { server: string; tag: string } {
  const i = ref.indexOf(':');
  if (i <= 0 || i === ref.length - 1) throw new Error(`--part takes SERVER:TAG (e.g. bm-mail:mail/imap), got ${JSON.stringify(ref)}`);
  return { server: ref.slice(0, i), tag: ref.slice(i + 1) };
}

/**
 * The parts of a generation that have a committed snapshot (by server, then tag), or only `only`. Parts without
 * a snapshot (they failed before writing one) are reported through `skipped`.
 */
export function exportParts(g: StoredGeneration, only?: { server: string; tag: string }, skipped?: (message: string) => void): ExportPart[] {
  const out: ExportPart[] = [];
  for (const p of g.record.parts) {
    if (only && (p.server !== only.server || p.tag !== only.tag)) continue;
    const snapshot = g.partSnapshots.find((s) => (p.snapshot ? s.id === p.snapshot : s.server === p.server && s.tag === p.tag));
    if (!snapshot) {
      skipped?.(`${p.server} ${p.tag}: no snapshot in generation ${g.record.id} (${p.messages[0] ?? p.status}), left out`);
      continue;
    }
    if (p.status !== 'VALID') skipped?.(`${p.server} ${p.tag}: the part is ${p.status} in generation ${g.record.id}, exported as it is`);
    out.push({ server: p.server, tag: p.tag, snapshot });
  }
  // Grouped by server, then tag: each folder of the export comes once, as tar and a tape reader like it.
  out.sort((a, b) => (a.server < b.server ? -1 : a.server > b.server ? 1 : a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
  if (only && out.length === 0) {
    const known = g.record.parts.map((p) => `${p.server}:${p.tag}`).join(', ');
    throw new NotFoundError(`generation ${g.record.id} has no part ${only.server}:${only.tag} with a snapshot (parts: ${known || 'none'})`);
  }
  return out;
}

function syntheticDir(name: string, time: string): TreeNode {
  return { name, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: time, ctime: time, inode: '0', device: '0', links: 1 };
}

function timeNs(iso: string): string {
  return (BigInt(Date.parse(iso)) * 1_000_000n).toString();
}

function splitSafe(path: string): string[] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new Error(`--include ${JSON.stringify(path)} contains '..'`);
  return parts;
}

/**
 * Every entry of the export, parents before children. With `include`, only those paths of each part (and what is
 * below them), with the directories on the way; a part that has none of them is left out, and an include that no
 * part has is an error. Hard links (links > 1, same device and inode within one part) come as `hardlink` entries
 * naming the first path, as tar and a restore both expect.
 */
export async function* exportEntries(repo: Repository, parts: ExportPart[], include: string[] = []): AsyncGenerator<ExportEntry> {
  const emitted = new Set<string>();
  const includes = include.map(splitSafe).filter((p) => p.length > 0);
  const found = new Set<number>();
  let firstByInode = new Map<string, string>();

  function* above(prefix: string[], time: string): Generator<ExportEntry> {
    for (let i = 1; i <= prefix.length; i++) {
      const path = prefix.slice(0, i).join('/');
      if (emitted.has(path)) continue;
      emitted.add(path);
      yield { path, type: 'dir', node: syntheticDir(prefix[i - 1], time), part: null };
    }
  }

  function leaf(part: ExportPart, path: string, node: TreeNode): ExportEntry | null {
    if (node.type === 'dir') return { path, type: 'dir', node, part };
    if (node.type === 'symlink') return { path, type: 'symlink', node, part };
    if (node.type !== 'file') return null; // fifos, sockets and devices: a restore leaves them out too
    const key = node.links > 1 && node.inode !== '0' ? `${node.device}:${node.inode}` : '';
    const first = key ? firstByInode.get(key) : undefined;
    if (first) return { path, type: 'hardlink', node, linkTo: first, part };
    if (key) firstByInode.set(key, path);
    return { path, type: 'file', node, part };
  }

  async function* walk(part: ExportPart, treeId: string, prefix: string): AsyncGenerator<ExportEntry> {
    for (const node of (await repo.loadTree(treeId)).nodes) {
      const path = `${prefix}/${node.name}`;
      const e = leaf(part, path, node);
      if (!e) continue;
      yield e;
      if (node.type === 'dir' && node.subtree) yield* walk(part, node.subtree, path);
    }
  }

  // Resolve every include in every part first, so that a wrong path fails before anything is written.
  const chains = new Map<ExportPart, TreeNode[][]>();
  for (const part of parts) {
    const resolved: TreeNode[][] = [];
    for (const [n, inc] of includes.entries()) {
      const chain: TreeNode[] = [];
      let treeId: string | undefined = part.snapshot.tree;
      for (const name of inc) {
        const node: TreeNode | undefined = treeId ? await repo.treeEntry(treeId, name) : undefined;
        if (!node || (chain.length < inc.length - 1 && node.type !== 'dir')) break;
        chain.push(node);
        treeId = node.subtree;
      }
      if (chain.length !== inc.length) continue; // this part does not have it
      found.add(n);
      resolved.push(chain);
    }
    chains.set(part, resolved);
  }
  const missing = includes.filter((_, n) => !found.has(n)).map((p) => '/' + p.join('/'));
  if (missing.length) throw new NotFoundError(`not in any exported part: ${missing.join(', ')}`);

  for (const part of parts) {
    firstByInode = new Map();
    const base = [...part.server.split('/'), ...part.tag.split('/')].filter((p) => p !== '');
    const time = timeNs(part.snapshot.time);
    if (includes.length === 0) {
      yield* above(base, time);
      yield* walk(part, part.snapshot.tree, base.join('/'));
      continue;
    }
    for (const chain of chains.get(part) ?? []) {
      yield* above(base, time);
      let path = base.join('/');
      for (const [i, node] of chain.entries()) {
        path = `${path}/${node.name}`;
        if (emitted.has(path)) continue;
        const e = leaf(part, path, node);
        if (!e) break;
        if (i < chain.length - 1 || node.type === 'dir') emitted.add(path);
        yield e;
        if (i === chain.length - 1 && node.type === 'dir' && node.subtree) yield* walk(part, node.subtree, path);
      }
    }
  }
}
