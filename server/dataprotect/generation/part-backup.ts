// One part of a generation, backed up in this process: its source (a database dump or directory trees) into one
// snapshot. The coordinator runs it for the servers it serves itself; a node agent runs it for its own server.

import { Archiver, defaultCacheDir, type BackupSummary, type Repository, type SnapshotInfo } from '../../engine/index.js';
import type { HostPort, Tag } from '../../host/port.js';
import { backupDatabase } from '../../sources/pgsql-backup.js';
import type { GenerationStatus } from '../model.js';
import { DP_FORMAT_VERSION, type PartRecord } from './format.js';

export interface PartPlan {
  server: string;
  tag: Tag;
}

export interface PartLog {
  info(m: string): void;
}

export interface PartBackupOptions {
  repo: Repository;
  host: HostPort;
  part: PartPlan;
  generation: string;
  /** The generation's time. */
  time: Date;
  /** Bytes read so far. */
  bytes?: (n: number) => void;
  log?: PartLog;
  signal?: AbortSignal;
  /** Kept in the snapshot's metadata beside the generation (e.g. which agent made the part). */
  meta?: Record<string, unknown>;
  /** Where the files cache lives (default: the user's cache folder); null: no cache, every file is compared with the parent's trees. */
  cacheDir?: string | null;
}

export function failedPart(p: PartPlan, begin: Date, message: string): PartRecord {
  return {
    id: `${p.server}:${p.tag}`, server: p.server, tag: p.tag, status: 'INVALID', begin: begin.toISOString(), end: new Date().toISOString(),
    sizeRead: 0, sizeAdded: 0, sizeTotal: null, messages: [message], snapshot: null,
  };
}

/** Never throws: a failure is the part's INVALID status and reason. */
export async function backupPart(o: PartBackupOptions): Promise<PartRecord> {
  const p = o.part;
  const begin = new Date();
  const errors: string[] = [];
  const warnings: string[] = [];
  const progress = {
    update: (s: Readonly<BackupSummary>) => o.bytes?.(s.bytesRead),
    error: (path: string, err: Error) => {
      const code = (err as NodeJS.ErrnoException).code;
      // A file that vanished while the spool was read (a Maildir flag change) is a warning, as rsync's code 24.
      if (code === 'ENOENT') warnings.push(`${path}: vanished while reading`);
      else errors.push(`${path}: ${err.message}`);
    },
    notice: (m: string) => o.log?.info(`part ${p.server} ${p.tag}: ${m}`),
  };
  const meta = { ...o.meta, generation: o.generation, dpFormat: DP_FORMAT_VERSION };
  let snap: SnapshotInfo;
  try {
    if (p.tag === 'bm/pgsql' || p.tag === 'bm/pgsql-data') {
      const db = (await o.host.databases()).find((d) => d.server === p.server && d.tag === p.tag);
      if (!db) throw new Error(`no database for ${p.tag} on ${p.server}`);
      const r = await backupDatabase({
        repo: o.repo, server: p.server, tag: p.tag, connection: db.connection, entities: p.tag === 'bm/pgsql' ? o.host.entityData : undefined,
        progress, meta, time: o.time,
      });
      snap = r.snapshot;
    } else {
      const locations = await o.host.dataLocations(p.server, p.tag);
      if (locations.length === 0) throw new Error(`the host has no data location for ${p.tag} on ${p.server}`);
      // The files cache lets a nightly run skip the parent's trees for unchanged mail (it lives on this server).
      const cacheDir = o.cacheDir === null ? undefined : o.cacheDir ?? defaultCacheDir();
      const archiver = new Archiver(o.repo, { server: p.server, tag: p.tag, progress, time: o.time, signal: o.signal, cacheDir });
      try {
        for (const l of locations) {
          try {
            await archiver.addTree(l.virtualPath, l.fsPath, { statParents: false });
          } catch (err) {
            // The location itself is unreadable or missing: the part cannot be trusted.
            errors.push(`${l.fsPath}: ${(err as Error).message}`);
          }
        }
        // Cancelled mid-part: no snapshot of a half-read tree.
        if (o.signal?.aborted) throw new Error(`cancelled while reading: ${reasonOf(o.signal)}`);
        snap = await archiver.commit({ meta });
      } catch (err) {
        await archiver.abort();
        throw err;
      }
    }
  } catch (err) {
    return failedPart(p, begin, (err as Error).message);
  }
  const status: GenerationStatus = errors.length ? 'INVALID' : warnings.length ? 'UNKNOWN' : 'VALID';
  const messages = [...errors.slice(0, 20), ...warnings.slice(0, 20)];
  if (errors.length > 20) messages.push(`… and ${errors.length - 20} more unreadable items`);
  if (errors.length) messages.unshift(`${errors.length} item(s) could not be read`);
  return {
    id: snap.id.slice(0, 16), server: p.server, tag: p.tag, status, begin: begin.toISOString(), end: new Date().toISOString(),
    sizeRead: snap.summary.bytesRead, sizeAdded: snap.summary.bytesAdded, sizeTotal: snap.summary.bytesTotal, messages, snapshot: snap.id,
  };
}

function reasonOf(signal: AbortSignal): string {
  return signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'cancelled');
}
