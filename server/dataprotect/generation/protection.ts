// Protecting a generation: kept whatever the retention policy. The mark is a field of the generation's own record
// in the repository, not of the plugin's tables, so a sync or a global restore that reads the repository alone
// finds it. Callers hold the backup lock (as a forget does), so no retention runs while the record changes.

import type { Repository } from '../../engine/index.js';
import { InvalidInputError } from '../errors.js';
import { findGeneration, writeRecord, type GenerationRecord } from './format.js';

export interface ProtectionChange {
  record: GenerationRecord;
  /** False when the generation already was in the state asked for (nothing was written). */
  changed: boolean;
}

/**
 * Protects (or unprotects) generation `id`: writes a new final revision of its record with `protected` set, then
 * deletes the older revisions. Readers take the highest revision, so an interruption between the two steps leaves
 * a redundant file, never a wrong answer. Throws GenerationNotFoundError; InvalidInputError for a generation whose
 * run did not finish (the next run deletes it whatever its mark).
 */
export async function setProtection(repo: Repository, id: string, protect: boolean): Promise<ProtectionChange> {
  const g = await findGeneration(repo, id);
  if (g.interrupted) {
    throw new InvalidInputError('generationId', `generation ${g.record.id} did not finish (the next run deletes it): it cannot be ${protect ? 'protected' : 'unprotected'}`);
  }
  if ((g.record.protected === true) === protect) return { record: g.record, changed: false };
  const finals = g.recordSnapshots.filter((s) => s.meta?.state === 'final');
  const revision = Math.max(0, ...finals.map((s) => Number(s.meta?.revision ?? 0))) + 1;
  const record: GenerationRecord = { ...g.record, protected: protect };
  await writeRecord(repo, record, revision, new Date(record.protectionTime));
  const lock = await repo.lock(true, `${protect ? 'protect' : 'unprotect'} generation ${id}`);
  try {
    for (const s of finals) {
      await repo.deleteSnapshot(s.id).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
  } finally {
    await lock.release();
  }
  return { record, changed: true };
}
