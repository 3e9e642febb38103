// The restore rehearsal: a generation restored into scratch databases and a scratch directory beside the live
// installation (which it never touches), compared with what the generation recorded, reported, then removed.
// Databases are checked table by table against the part's manifest (row counts and fingerprints); trees file by
// file against the snapshot (type, size, mode, mtime, and the content's blob ids, recomputed from the restored
// bytes). A part that cannot be restored (a damaged pack) fails the rehearsal with what went wrong.

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { walkTree, findNode, type Repository, type SnapshotInfo, type TreeNode } from '../../engine/index.js';
import { withDatabase, type ConnectionSettings } from '../../pg/settings.js';
import { dropDatabase } from '../../pg/databases.js';
import { withClient } from '../../pg/client.js';
import { readManifest, tableFingerprints } from '../../sources/pgsql-manifest.js';
import { fileBlobIds, sameContent } from './digest.js';
import type { InstallationPort } from '../../host/installation.js';
import type { DataLocation, HostPort } from '../../host/port.js';
import type { RunLog } from '../generation/run.js';
import { planRestore } from './plan.js';
import { runGlobalRestore, type GlobalRestoreProgress, type PartOutcome } from './run.js';
import { findGeneration } from '../generation/format.js';

export interface RehearsalReport {
  generation: string;
  ok: boolean;
  /** Compared parts (all of them, unless the restore itself failed). */
  parts: (PartOutcome & { compared: number; differences: string[] })[];
  /** Why the restore into the sandbox stopped, when it did: the rehearsal failed. */
  failure: string | null;
  durationMs: number;
  /** The sandbox was removed (it always is, unless removing failed). */
  removed: boolean;
}

/** The installation seen through the sandbox: same servers, scratch databases, data under `dir`. */
export function sandboxInstallation(inst: InstallationPort, dir: string, suffix: string): { installation: InstallationPort; scratch: ConnectionSettings[] } {
  const scratch: ConnectionSettings[] = [];
  const real = inst.host;
  const host: HostPort = Object.create(real, {
    databases: {
      value: async () =>
        (await real.databases()).map((d) => {
          const c = withDatabase(d.connection, `${d.connection.database}_rehearsal_${suffix}`.slice(0, 63));
          if (!scratch.some((s) => s.database === c.database)) scratch.push(c);
          return { ...d, connection: c };
        }),
    },
    dataLocations: {
      value: async (server: string, tag: string): Promise<DataLocation[]> =>
        (await real.dataLocations(server, tag)).map((l) => ({ ...l, fsPath: path.join(dir, 'servers', server, tag.replace(/\//g, '_'), ...l.virtualPath.split('/')) })),
    },
  }) as HostPort;
  return {
    scratch,
    installation: {
      host,
      productVersion: inst.productVersion,
      stateDir: path.join(dir, 'state'),
      // Nothing serves the sandbox, and its configuration is compared as the generation recorded it.
      mailSpoolRestored: async () => 0,
      serverRenamed: async () => [],
      rewriteServerAddress: async () => [],
    },
  };
}

export interface RehearsalOptions {
  repo: Repository;
  installation: InstallationPort;
  generation: string;
  servers?: ReadonlyMap<string, string>;
  /** A new (or empty) directory; removed at the end. */
  dir: string;
  log?: RunLog;
  progress?: (p: GlobalRestoreProgress) => void;
  /** A part begins or ends in the sandbox. */
  onPart?: (key: string, state: 'starting' | 'done' | 'skipped') => void;
}

export async function rehearseGlobalRestore(o: RehearsalOptions): Promise<RehearsalReport> {
  const started = Date.now();
  const dir = path.resolve(o.dir);
  const existing = await fs.readdir(dir).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? [] : Promise.reject(e)));
  if (existing.length) throw new Error(`the sandbox ${dir} is not empty: give a new directory (it is removed afterwards)`);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const { installation, scratch } = sandboxInstallation(o.installation, dir, randomBytes(3).toString('hex'));
  let removed = false;
  try {
    let result;
    try {
      result = await runGlobalRestore({ repo: o.repo, installation, generation: o.generation, servers: o.servers, log: o.log, progress: o.progress, onPart: o.onPart });
    } catch (e) {
      const failure = (e as Error).message;
      o.log?.error(`rehearsal: ${failure}`);
      return { generation: o.generation, ok: false, parts: [], failure, durationMs: Date.now() - started, removed: true };
    }
    const g = await findGeneration(o.repo, result.generation);
    const plan = await planRestore(g, installation.host, o.servers ?? new Map());
    const parts: RehearsalReport['parts'] = [];
    for (const outcome of result.parts) {
      const p = plan.parts.find((x) => x.key === outcome.key)!;
      const differences: string[] = [];
      let compared = 0;
      if (p.kind === 'database') {
        const r = await compareTables(o.repo, p.snapshot, p.database!.connection);
        compared += r.compared;
        differences.push(...r.differences);
      }
      for (const l of p.locations) {
        const root = await findNode(o.repo, p.snapshot, l.virtualPath);
        compared++;
        differences.push(...(await compareNode(o.repo, root, l.fsPath, l.virtualPath)));
        if (root.subtree) {
          for await (const { path: rel, node } of walkTree(o.repo, root.subtree)) {
            compared++;
            differences.push(...(await compareNode(o.repo, node, path.join(l.fsPath, rel), path.posix.join(l.virtualPath, rel))));
          }
        }
      }
      parts.push({ ...outcome, compared, differences: differences.slice(0, 20) });
    }
    const ok = parts.every((p) => p.differences.length === 0);
    return { generation: result.generation, ok, parts, failure: null, durationMs: Date.now() - started, removed: true };
  } finally {
    for (const c of scratch) await dropDatabase(c, c.database).catch((e: Error) => o.log?.warn(`could not drop the scratch database ${c.database}: ${e.message}`));
    await fs.rm(dir, { recursive: true, force: true }).then(() => (removed = true), (e: Error) => o.log?.warn(`could not remove the sandbox ${dir}: ${e.message}`));
    if (!removed) o.log?.warn(`the sandbox ${dir} is left behind`);
  }
}

/** Every table of the restored database against the part's manifest: row count and content fingerprint. */
async function compareTables(repo: Repository, snapshot: SnapshotInfo, db: ConnectionSettings): Promise<{ compared: number; differences: string[] }> {
  const manifest = await readManifest(repo, snapshot);
  const restored = await withClient(db, (c) => tableFingerprints(c));
  const differences: string[] = [];
  for (const [name, want] of Object.entries(manifest.tables)) {
    const got = restored[name];
    if (!got) differences.push(`table ${name}: missing`);
    else if (got.rows !== want.rows) differences.push(`table ${name}: ${got.rows} rows, the generation has ${want.rows}`);
    else if (got.hash !== want.hash) differences.push(`table ${name}: content differs from the generation's fingerprint`);
  }
  for (const name of Object.keys(restored)) if (!manifest.tables[name]) differences.push(`table ${name}: not in the generation`);
  return { compared: Object.keys(manifest.tables).length, differences };
}

async function compareNode(repo: Repository, node: TreeNode, file: string, shown: string): Promise<string[]> {
  let st;
  try {
    st = await fs.lstat(file, { bigint: true });
  } catch {
    return [`${shown}: missing`];
  }
  const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other';
  const out: string[] = [];
  if (type !== node.type) return [`${shown}: a ${type}, the generation has a ${node.type}`];
  if (type === 'file' && Number(st.size) !== node.size) out.push(`${shown}: ${st.size} bytes, the generation has ${node.size}`);
  if (type !== 'symlink' && (Number(st.mode) & 0o7777) !== node.mode) out.push(`${shown}: mode ${(Number(st.mode) & 0o7777).toString(8)}, the generation has ${node.mode.toString(8)}`);
  // Restored times are exact to the microsecond (utimes' resolution).
  if (type === 'file' && st.mtimeNs / 1000n !== BigInt(node.mtime) / 1000n) out.push(`${shown}: modified at ${st.mtimeNs} ns, the generation has ${node.mtime}`);
  if (type === 'symlink' && (await fs.readlink(file)) !== node.target) out.push(`${shown}: points elsewhere than in the generation`);
  if (type === 'file' && !out.length && !sameContent(await fileBlobIds(repo, file, node.content ?? []), node.content ?? [])) out.push(`${shown}: content differs from the generation (blob digests)`);
  return out;
}
