// How protected the installation is, read from the repository: its generations, what it stores, the room left on
// its disk. One computation for the metrics (Prometheus) and the navigator's summary. The repository's side is
// read again only when its snapshots changed (or every few minutes, for the sizes), so a scrape every 15 s or a
// console poll costs a directory listing.

import { statfs } from 'node:fs/promises';
import { inject, injectable } from 'tsyringe';
import { isRecoveryPoint, readGenerations, runEnd, type StoredGeneration } from './generation/format.js';
import { openLocation, snapshotFingerprint } from './generation/repository.js';
import { SettingsService } from './settings.js';

const SIZES_TTL_MS = 5 * 60_000;

export interface RepositoryStatus {
  location: string;
  /** Newest first; null when there is no repository at the location (yet). */
  generations: StoredGeneration[] | null;
  /** What the repository takes on its storage; null when there is none. */
  storedBytes: number | null;
  /** The disk it is on (null for s3:// and when the folder cannot be read). */
  freeBytes: number | null;
  filesystemBytes: number | null;
  /** Why the repository could not be read, when it could not. */
  readError: string | null;
}

interface View {
  location: string;
  fingerprint: string;
  generations: StoredGeneration[];
  storedBytes: number;
  sizedAt: number;
}

/** A generation that protects the installation: complete, every part valid, the run not in error. */
export function succeeded(g: StoredGeneration): boolean {
  return !g.interrupted && g.record.status === 'VALID' && (g.record.runStatus === 'OK' || g.record.runStatus === 'WARNING');
}

/** The newest run that ended (a run in progress has no final record yet), else the newest. */
export function lastRun(gens: readonly StoredGeneration[]): StoredGeneration | null {
  return gens.find((g) => !g.interrupted) ?? gens[0] ?? null;
}

/** The full size of a generation: of its part snapshots, what each part protects. */
export function protectedBytes(g: StoredGeneration): number {
  return g.partSnapshots.reduce((n, s) => n + s.summary.bytesTotal, 0);
}

/** Seconds from a run's start to its end, when it ended. */
export function runSeconds(g: StoredGeneration): number | null {
  const end = runEnd(g.record);
  return end ? Math.max(0, (Date.parse(end) - Date.parse(g.record.protectionTime)) / 1000) : null;
}

export function isS3(location: string): boolean {
  return /^s3:\/\//i.test(location);
}

@injectable()
export class ProtectionStatus {
  private view: View | null = null;

  constructor(@inject(SettingsService) private readonly settings: SettingsService) {}

  /** The repository of the current settings, as it is now. */
  async read(): Promise<RepositoryStatus> {
    const { repositoryLocation } = await this.settings.get();
    // An unreachable bucket or share leaves the generations unknown, and says why.
    let readError: string | null = null;
    const view = await this.repository(repositoryLocation).catch((e: Error) => ((readError = e.message), null));
    let freeBytes: number | null = null;
    let filesystemBytes: number | null = null;
    if (!isS3(repositoryLocation)) {
      const fs = await statfs(repositoryLocation).catch(() => null);
      if (fs) {
        freeBytes = fs.bavail * fs.bsize;
        filesystemBytes = fs.blocks * fs.bsize;
      }
    }
    return {
      location: repositoryLocation,
      generations: view?.generations ?? null,
      storedBytes: view?.storedBytes ?? null,
      freeBytes,
      filesystemBytes,
      readError,
    };
  }

  private async repository(location: string): Promise<View | null> {
    let fingerprint: string;
    try {
      fingerprint = await snapshotFingerprint(location);
    } catch {
      return null; // no repository there yet
    }
    const v = this.view;
    const same = v && v.location === location && v.fingerprint === fingerprint;
    if (same && Date.now() - v.sizedAt < SIZES_TTL_MS) return v;
    const repo = await openLocation(location, { loadIndex: false });
    if (!repo) return null;
    try {
      // Mail recovery points protect the mail only: "am I protected?" is answered by the full generations.
      const generations = same ? v.generations : (await readGenerations(repo)).filter((g) => !isRecoveryPoint(g.record));
      const storedBytes = await repo.storedBytes();
      this.view = { location, fingerprint, generations, storedBytes, sizedAt: Date.now() };
      return this.view;
    } finally {
      await repo.close();
    }
  }
}
