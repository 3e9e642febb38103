import type { Repository } from './repository.js';
import type { SnapshotInfo } from './snapshot.js';
import { walkTree } from './reader.js';
import type { TreeNode } from './tree.js';

export type ChangeKind = 'added' | 'removed' | 'modified';

export interface Change {
  kind: ChangeKind;
  path: string;
  type: TreeNode['type'];
}

/** What changed from snapshot a to snapshot b; identical subtrees (same tree id) are skipped unread. */
export async function* diffSnapshots(repo: Repository, a: SnapshotInfo, b: SnapshotInfo): AsyncGenerator<Change> {
  yield* diffTrees(repo, a.tree, b.tree, '');
}

async function* diffTrees(repo: Repository, ta: string | undefined, tb: string | undefined, prefix: string): AsyncGenerator<Change> {
  if (ta === tb) return;
  const na = ta ? (await repo.loadTree(ta)).nodes : [];
  const nb = tb ? (await repo.loadTree(tb)).nodes : [];
  const mb = new Map(nb.map((n) => [n.name, n]));
  const ma = new Map(na.map((n) => [n.name, n]));
  const names = [...new Set([...ma.keys(), ...mb.keys()])].sort();
  for (const name of names) {
    const x = ma.get(name);
    const y = mb.get(name);
    const path = `${prefix}/${name}`;
    if (x && !y) {
      yield* everything(repo, x, path, 'removed');
    } else if (!x && y) {
      yield* everything(repo, y, path, 'added');
    } else if (x && y) {
      if (x.type !== y.type) {
        yield* everything(repo, x, path, 'removed');
        yield* everything(repo, y, path, 'added');
      } else if (x.type === 'dir') {
        yield* diffTrees(repo, x.subtree, y.subtree, path);
      } else if (contentKey(x) !== contentKey(y) || x.mode !== y.mode || x.uid !== y.uid || x.gid !== y.gid || x.mtime !== y.mtime) {
        yield { kind: 'modified', path, type: y.type };
      }
    }
  }
}

async function* everything(repo: Repository, node: TreeNode, path: string, kind: ChangeKind): AsyncGenerator<Change> {
  yield { kind, path, type: node.type };
  if (node.type === 'dir' && node.subtree) for await (const c of walkTree(repo, node.subtree, path)) yield { kind, path: c.path, type: c.node.type };
}

function contentKey(n: TreeNode): string {
  return n.type === 'symlink' ? `l:${n.target}` : (n.content ?? []).join(',');
}
