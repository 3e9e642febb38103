// "The snapshot of part (server, tag) of generation G": what a restore reads. Generations are read from the
// repository alone, as the nightly backup records them (generation/format.ts): each part is an engine snapshot
// whose meta names its generation, and the generation's record says which snapshot each part is.

import type { Repository, SnapshotInfo } from '../../engine/index.js';
import { NotFoundError } from '../errors.js';
import { isRecoveryPoint, readGenerations } from '../generation/format.js';

const MAIL_TAGS = new Set(['mail/imap', 'mail/archive']);

export interface GenerationPart {
  server: string;
  tag: string;
  snapshot: SnapshotInfo;
}

export interface GenerationView {
  id: string;
  /** When the generation was taken (its earliest part): `restored-YYYY-MM-DD` uses it. */
  time: Date;
  parts: GenerationPart[];
  /**
   * A mail recovery point: its own parts are the mail ones; the others (the directory the catalog reads) are
   * those of `base`, the newest full generation taken before it. It restores mail only.
   */
  recoveryPoint?: boolean;
  base?: string | null;
}

export interface GenerationParts {
  /** Throws NotFoundError for an unknown generation. */
  get(generationId: string): Promise<GenerationView>;
}

/** Generations read from the repository's snapshots (no database needed: the CLI and tests use it). */
export class RepositoryGenerationParts implements GenerationParts {
  constructor(private readonly repo: () => Promise<Repository>) {}

  async list(): Promise<GenerationView[]> {
    const repo = await this.repo();
    const views = (await readGenerations(repo)).map((g) => {
      const byId = new Map(g.partSnapshots.map((s) => [s.id, s]));
      const parts: GenerationPart[] = [];
      for (const p of g.record.parts) {
        // A failed part restores nothing; an interrupted run's parts are listed from their snapshots.
        const snap = p.snapshot ? byId.get(p.snapshot) : undefined;
        if (snap && p.status !== 'INVALID') parts.push({ server: p.server, tag: p.tag, snapshot: snap });
        else if (snap && g.interrupted) parts.push({ server: p.server, tag: p.tag, snapshot: snap });
      }
      const view: GenerationView = { id: g.record.id, time: new Date(g.record.protectionTime), parts };
      if (isRecoveryPoint(g.record)) view.recoveryPoint = true;
      return view;
    });
    // Newest first: a recovery point borrows the non-mail parts of the next full generation below it in the list.
    return views.map((v, i) => {
      if (!v.recoveryPoint) return v;
      const base = views.slice(i + 1).find((x) => !x.recoveryPoint && x.parts.length > 0) ?? null;
      return { ...v, base: base?.id ?? null, parts: [...v.parts, ...(base?.parts.filter((p) => !MAIL_TAGS.has(p.tag)) ?? [])] };
    });
  }

  async get(generationId: string): Promise<GenerationView> {
    const all = await this.list();
    const g = generationId === 'latest' ? all.find((x) => !x.recoveryPoint) : all.find((x) => x.id === generationId);
    if (!g) throw new NotFoundError(`generation ${generationId} not found in the repository`);
    return g;
  }
}

/** The snapshot of part (server, tag) of a generation, or null when the generation lacks it. */
export function partSnapshot(g: GenerationView, tag: string, server?: string): SnapshotInfo | null {
  return g.parts.find((p) => p.tag === tag && (server === undefined || p.server === server))?.snapshot ?? null;
}
