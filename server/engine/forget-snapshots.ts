import { applyPolicy, groupSnapshots, type ForgetPolicy } from './forget-policy.js';
import type { Repository, SnapshotFilter } from './repository.js';
import type { SnapshotInfo } from './snapshot.js';

export interface ForgetResult {
  groups: { server: string; tag: string; keep: { id: string; time: string; reasons: string[] }[]; remove: { id: string; time: string }[] }[];
  removed: number;
}

/** Applies the policy per (server, tag) group and deletes the snapshot files it does not keep. Exclusive lock. */
export async function forgetSnapshots(repo: Repository, policy: ForgetPolicy, opts: { filter?: SnapshotFilter; dryRun?: boolean; notice?: (m: string) => void } = {}): Promise<ForgetResult> {
  const lock = await repo.lock(true, 'forget', opts.notice);
  try {
    const result: ForgetResult = { groups: [], removed: 0 };
    const groups = groupSnapshots(await repo.listSnapshots(opts.filter));
    for (const snaps of groups.values()) {
      const d = applyPolicy(snaps, policy);
      const first: SnapshotInfo = snaps[0];
      result.groups.push({
        server: first.server,
        tag: first.tag,
        keep: d.keep.map((k) => ({ id: k.snapshot.id, time: k.snapshot.time, reasons: k.reasons })),
        remove: d.remove.map((r) => ({ id: r.id, time: r.time })),
      });
      if (!opts.dryRun) for (const r of d.remove) await repo.deleteSnapshot(r.id);
      result.removed += d.remove.length;
    }
    return result;
  } finally {
    await lock.release();
  }
}
