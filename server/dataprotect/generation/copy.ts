// Copying generations to another repository (off site, another disk, object storage): the "3-2-1" rule.
//
// A generation is copied whole: its running record, every part snapshot, then its final records, in the order a run
// writes them, so that a copy interrupted at any point leaves in the destination at most an unfinished generation
// ("interrupted", as a run killed half-way would), which the next copy completes. What the destination has is
// recognised by meaning, not by file name (names differ when the two repositories are encrypted differently): a
// part by (generation, server, tag, time), a record by (generation, state, revision). A copy never deletes anything
// in the destination; the destination's `latest` reference is refreshed at the end.

import { SnapshotCopier, type CopyProgress, type CopyVerification, type Repository, type SnapshotInfo } from '../../engine/index.js';
import { GenerationNotFoundError, isRecoveryPoint, readGenerations, refreshLatest, writeRecord, type GenerationRecord, type StoredGeneration } from './format.js';

export interface GenerationCopyProgress extends CopyProgress {
  /** Snapshots (parts and records) handled, of those the copy needs to look at. */
  snapshotsDone: number;
  snapshotsTotal: number;
  /** Bytes of content the generations to copy hold (their parts' full size). */
  bytesTotal: number;
  generation: string;
}

export interface GenerationCopyOptions {
  from: Repository;
  to: Repository;
  /** Generation ids, or `latest`; none: every complete generation of the source. */
  generations?: string[];
  /** Read every copied blob back from the destination at the end (slower; default: structure and presence). */
  readData?: boolean;
  progress?: (p: GenerationCopyProgress) => void;
  notice?: (message: string) => void;
}

export interface CopiedGeneration {
  id: string;
  /** `copied`: something was written; `present`: the destination had all of it already. */
  outcome: 'copied' | 'present';
  snapshots: number;
}

export interface GenerationCopyResult {
  generations: CopiedGeneration[];
  /** Blobs and pack bytes written to the destination. */
  blobsNew: number;
  bytesAdded: number;
  /** Whether blobs were re-encoded (the two repositories name blobs differently). */
  reencoded: boolean;
  verified: CopyVerification;
}

/** An error of the caller's choice of generations (unknown, or one whose run did not finish). */
export class GenerationCopyError extends GenerationNotFoundError {}

const partKey = (s: SnapshotInfo) => `${s.server}\t${s.tag}\t${s.time}`;
const recordKey = (s: SnapshotInfo) => `${String(s.meta?.state)}\t${Number(s.meta?.revision ?? 0)}`;

/**
 * The generations a copy takes from `from`, oldest first: those named, else every complete one. Throws
 * GenerationCopyError for an unknown or unfinished one (a caller can ask before creating the destination).
 */
export async function selectGenerations(from: Repository, refs?: string[], notice: (m: string) => void = () => {}): Promise<StoredGeneration[]> {
  return chosen(await readGenerations(from), refs, notice);
}

function chosen(all: StoredGeneration[], refs: string[] | undefined, notice: (m: string) => void): StoredGeneration[] {
  const complete = all.filter((g) => !g.interrupted);
  if (!refs || refs.length === 0) {
    const skipped = all.length - complete.length;
    if (skipped) notice(`leaving out ${skipped} generation(s) whose run did not finish`);
    return complete.reverse();
  }
  const out = new Map<string, StoredGeneration>();
  for (const ref of refs) {
    // `latest` is the newest valid full generation, never a mail recovery point (as the repository's own reference).
    const g = ref === 'latest' ? complete.find((x) => x.record.status === 'VALID' && !isRecoveryPoint(x.record)) : all.find((x) => x.record.id === ref);
    if (!g) throw new GenerationCopyError(ref === 'latest' ? 'the source repository has no valid generation' : `no generation ${ref} in the source repository ('generation list' shows them)`);
    if (g.interrupted) throw new GenerationCopyError(`generation ${g.record.id} did not finish (its run was interrupted): only complete generations are copied`);
    out.set(g.record.id, g);
  }
  return [...out.values()].sort((a, b) => (a.record.protectionTime < b.record.protectionTime ? -1 : 1));
}

/** Copies generations from one repository to another; see the top of this file. */
export async function copyGenerations(o: GenerationCopyOptions): Promise<GenerationCopyResult> {
  const notice = o.notice ?? (() => {});
  let snapshotsDone = 0;
  let snapshotsTotal = 0;
  let bytesTotal = 0;
  // The copier counts the content bytes it walks; parts the destination had, and subtrees it had walked for an
  // earlier generation, are counted here.
  let bytesBefore = 0;
  let current = '';
  const progress = (p: CopyProgress) => o.progress?.({ ...p, bytesDone: bytesBefore + p.bytesDone, snapshotsDone, snapshotsTotal, bytesTotal, generation: current });
  const copier = new SnapshotCopier(o.from, o.to, { notice, progress });
  await copier.start();
  try {
    const gens = chosen(await readGenerations(o.from), o.generations, notice);
    const existing = new Map((await readGenerations(o.to)).map((g) => [g.record.id, g]));
    snapshotsTotal = gens.reduce((n, g) => n + g.recordSnapshots.length + g.partSnapshots.length, 0);
    bytesTotal = gens.reduce((n, g) => n + g.partSnapshots.reduce((m, s) => m + s.summary.bytesTotal, 0), 0);

    const result: GenerationCopyResult = { generations: [], blobsNew: 0, bytesAdded: 0, reencoded: !copier.sameIds, verified: { snapshots: 0, trees: 0, blobs: 0, blobsRead: 0 } };
    const toVerify: SnapshotInfo[] = [];
    for (const g of gens) {
      current = g.record.id;
      const there = existing.get(g.record.id);
      const partsThere = new Map((there?.partSnapshots ?? []).map((s) => [partKey(s), s]));
      const recordsThere = new Map((there?.recordSnapshots ?? []).map((s) => [recordKey(s), s]));
      const ids = new Map<string, string>();
      let written = 0;
      const records = [...g.recordSnapshots].sort((a, b) => order(a) - order(b));
      const copyRecord = async (r: SnapshotInfo) => {
        const have = recordsThere.get(recordKey(r));
        if (have) toVerify.push(have);
        else {
          toVerify.push(await copyRecordSnapshot(copier, o.to, r, ids));
          written++;
        }
        snapshotsDone++;
        progress(copier.stats);
      };
      for (const r of records.filter((x) => x.meta?.state !== 'final')) await copyRecord(r);
      for (const s of g.partSnapshots) {
        const have = partsThere.get(partKey(s));
        let copied: SnapshotInfo;
        if (have) {
          copied = have;
          bytesBefore += s.summary.bytesTotal;
        } else {
          const before = copier.stats.bytesDone;
          copied = await copier.copy(s, { parent: copier.sameIds ? undefined : (s.parent && ids.get(s.parent)) || null });
          bytesBefore += s.summary.bytesTotal - (copier.stats.bytesDone - before);
          written++;
        }
        ids.set(s.id, copied.id);
        toVerify.push(copied);
        snapshotsDone++;
        progress(copier.stats);
      }
      for (const r of records.filter((x) => x.meta?.state === 'final')) await copyRecord(r);
      result.generations.push({ id: g.record.id, outcome: written ? 'copied' : 'present', snapshots: g.recordSnapshots.length + g.partSnapshots.length });
    }
    Object.assign(result, { blobsNew: copier.stats.blobsNew, bytesAdded: copier.stats.bytesAdded });
    result.verified = await copier.verify(toVerify, { readData: o.readData });
    if (gens.length) await refreshLatest(o.to);
    return result;
  } finally {
    await copier.finish();
  }
}

/** Running records first, then final revisions in order. */
function order(s: SnapshotInfo): number {
  return (s.meta?.state === 'final' ? 1_000_000 : 0) + Number(s.meta?.revision ?? 0);
}

/**
 * A record snapshot in the destination. Its record names the parts' snapshots: when the ids carried over it is
 * copied as it is; otherwise it is written again with the destination's snapshot ids (and its `/generation.json`).
 */
async function copyRecordSnapshot(copier: SnapshotCopier, to: Repository, r: SnapshotInfo, ids: Map<string, string>): Promise<SnapshotInfo> {
  const record = r.meta?.record as GenerationRecord | undefined;
  const mapped = record && {
    ...record,
    parts: record.parts.map((p) => ({ ...p, snapshot: p.snapshot ? ids.get(p.snapshot) ?? p.snapshot : null })),
  };
  const same = !mapped || mapped.parts.every((p, i) => p.snapshot === record!.parts[i].snapshot);
  if (same) return copier.copy(r);
  return writeRecord(to, mapped, Number(r.meta?.revision ?? 0), new Date(r.time));
}
