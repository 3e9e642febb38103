// Which generations this program and this installation can take back: the generation description's format
// version (a newer one is refused, naming both), and BlueMind's rule "same major version, any later minor".

import { DP_FORMAT_VERSION, type GenerationRecord } from '../generation/format.js';

export class UnreadableGenerationError extends Error {}

/** Throws when the generation was written in a description format newer than this program reads. */
export function assertReadableFormat(record: Pick<GenerationRecord, 'id' | 'formatVersion'>): void {
  const v = record.formatVersion;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new UnreadableGenerationError(`generation ${record.id} has no readable format version (${JSON.stringify(v)})`);
  }
  if (v > DP_FORMAT_VERSION) {
    throw new UnreadableGenerationError(
      `generation ${record.id} is in generation format version ${v}; this program reads versions up to ${DP_FORMAT_VERSION}: ` +
        'restore it with a newer bm-dataprotect',
    );
  }
}

export interface ProductVersion {
  major: number;
  minor: number;
  patch: number;
  text: string;
}

/** `5.1.0`, `4.4.3-reference`, `5.1`: null when the text holds no version. */
export function parseProductVersion(text: string): ProductVersion | null {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text.trim());
  if (!m) return null;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0), text };
}

export type Verdict = { status: 'met' | 'not-met' | 'warning'; message: string; advice?: string };

/** A generation of product `made` restored on product `running`: same major, and running not older. */
export function productCompatibility(made: string, running: string): Verdict {
  const g = parseProductVersion(made);
  const r = parseProductVersion(running);
  if (!r) return { status: 'warning', message: `the running product's version (${running}) is not a version number: compatibility not checked` };
  if (!g) {
    return {
      status: 'warning',
      message: `the generation does not record a product version (${made}): compatibility with ${running} not checked`,
      advice: `make sure the installation runs the BlueMind version the backup was made with`,
    };
  }
  if (g.major !== r.major) {
    return {
      status: 'not-met',
      message: `the generation was made by BlueMind ${made}, this installation runs ${running}: the major versions differ`,
      advice: `install BlueMind ${g.major}.x (${made} or a later ${g.major}.x), then restore`,
    };
  }
  const older = r.minor < g.minor || (r.minor === g.minor && r.patch < g.patch);
  if (older) {
    return {
      status: 'not-met',
      message: `the generation was made by BlueMind ${made}, newer than this installation's ${running}`,
      advice: `upgrade this installation to ${made} or a later ${g.major}.x, then restore`,
    };
  }
  return { status: 'met', message: `BlueMind ${running} can take back a generation made by ${made} (same major version)` };
}
