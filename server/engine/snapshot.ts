/** A snapshot: one part (server, tag) of a generation at one moment. File: metadata header + zstd JSON. */
export interface Snapshot {
  version: number;
  time: string;
  /** Root tree blob id. */
  tree: string;
  /** Paths given to the backup (for a stream: its virtual path). */
  paths: string[];
  hostname: string;
  /** BlueMind server (address or name) and tag (bm/pgsql, mail/imap, ...): the parent is chosen by these. */
  server: string;
  tag: string;
  parent?: string;
  program: string;
  /** Free-form metadata of the caller (generation id, part status ...). */
  meta?: Record<string, unknown>;
  summary: BackupSummary;
}

export interface SnapshotInfo extends Snapshot {
  id: string;
}

export interface BackupSummary {
  filesNew: number;
  filesChanged: number;
  filesUnmodified: number;
  /** Files found again under another name or folder (Maildir flag change, IMAP move): not read. */
  filesRenamed: number;
  dirs: number;
  /** Bytes of content read from the source. */
  bytesRead: number;
  /** Total size of the files of the snapshot. */
  bytesTotal: number;
  blobsNew: number;
  /** Bytes added to the repository's packs (after dedup and compression). */
  bytesAdded: number;
  errors: number;
  durationMs: number;
}

/** Files the backup saw: new, changed, unchanged and renamed. */
/** Snapshots in time order, ties by id: the last of a (server, tag) is its `latest`. */
export function bySnapshotTime(a: { time: string; id: string }, b: { time: string; id: string }): number {
  return a.time < b.time ? -1 : a.time > b.time ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function filesSeen(s: BackupSummary): number {
  return s.filesNew + s.filesChanged + s.filesUnmodified + s.filesRenamed;
}
