// One file part of a global restore (spool, archive, file hosting, configuration): its snapshot restored beside
// each data location, swapped in, then the host told (the mail server re-reads its spool, the configuration
// names servers by their new addresses). The coordinator runs it for the servers it serves; a node agent for its own.

import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { restore, type Repository, type RestoreSummary, type SnapshotInfo } from '../../engine/index.js';
import type { DataLocation } from '../../host/port.js';
import type { InstallationPort } from '../../host/installation.js';
import type { RunLog } from '../generation/run.js';
import { clearLocation, stagingOf } from './targets.js';

export type Report = (bytes: number, bytesTotal: number, files: number, filesTotal: number) => void;

export interface PartDone {
  bytes: number;
  files: number;
  detail: string;
}

export interface TreePartJob {
  /** `server tag` of the generation. */
  key: string;
  tag: string;
  /** The server of this installation it goes to. */
  target: string;
  snapshot: SnapshotInfo;
  locations: Pick<DataLocation, 'virtualPath' | 'fsPath'>[];
}

export type TreeHost = Pick<InstallationPort, 'rewriteServerAddress' | 'mailSpoolRestored'>;

/** From scratch: whatever an interrupted attempt left goes first. */
export async function clearLocations(locations: readonly Pick<DataLocation, 'fsPath'>[]): Promise<void> {
  for (const l of locations) await clearLocation(l);
}

export async function restoreTreePart(repo: Repository, inst: TreeHost, p: TreePartJob, changes: { from: string; to: string }[], report: Report, log: Pick<RunLog, 'info'>): Promise<PartDone> {
  let bytes = 0;
  let files = 0;
  const notes: string[] = [];
  for (const l of p.locations) {
    const staging = stagingOf(l.fsPath);
    await fs.mkdir(staging, { recursive: true, mode: 0o700 });
    let s: RestoreSummary;
    try {
      s = await restore(repo, p.snapshot, {
        target: staging, include: [l.virtualPath],
        progress: { update: (x) => report(bytes + x.bytes, x.bytesTotal, files + x.files, x.filesTotal) },
      });
    } catch (e) {
      throw new Error(`part ${p.key}: restoring ${l.virtualPath} into ${l.fsPath}: ${(e as Error).message}`);
    }
    if (s.errors) throw new Error(`part ${p.key}: ${s.errors} error(s) restoring ${l.virtualPath}${s.damage.length ? `: ${s.damage.slice(0, 3).join('; ')}` : ''}`);
    const filled = path.join(staging, l.virtualPath);
    if (!existsSync(filled)) await fs.mkdir(filled, { recursive: true });
    await fs.mkdir(path.dirname(l.fsPath), { recursive: true });
    await fs.rename(filled, l.fsPath);
    await fs.rm(staging, { recursive: true, force: true });
    bytes += s.bytes;
    files += s.files;
    if (p.tag === 'bm/conf') {
      for (const c of changes) {
        const changed = await inst.rewriteServerAddress(l.fsPath, c.from, c.to);
        if (changed.length) notes.push(`${c.from} → ${c.to} in ${changed.join(', ')}`);
      }
    }
    if (p.tag === 'mail/imap') {
      const n = await inst.mailSpoolRestored(p.target, l.fsPath);
      if (n) notes.push(`mail server resynchronised ${n} mailboxes`);
    }
  }
  for (const n of notes) log.info(`part ${p.key}: ${n}`);
  return { bytes, files, detail: [`${files} files, ${bytes} bytes`, ...notes].join('; ') };
}
