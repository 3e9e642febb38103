/**
 * The small storage interface every backend implements (local directory / NFS, in memory; S3 later).
 * Content-addressed files (data, index, snapshot) are write-once: their names never get new content.
 * Locks and references are the files that are rewritten. Key files (`key`, encrypted repositories only) are
 * written once and deleted when a password is withdrawn.
 */
export type FileType = 'config' | 'data' | 'index' | 'snapshot' | 'lock' | 'reference' | 'key';

/**
 * Names a reference cannot take, on every backend (so that a repository can move between them): a directory
 * keeps its references at its root, beside the config file and the folders of the other types.
 */
export const RESERVED_REFERENCE_NAMES: ReadonlySet<string> = new Set(['config', 'data', 'index', 'snapshots', 'locks', 'keys']);

export interface FileInfo {
  name: string;
  size: number;
}

/**
 * The parts of one file, appended in order, each after the previous append resolved: the caller may reuse a
 * part's memory once its append resolved. Nothing is visible under any name before `commit`; after a crash
 * or an `abort` nothing of it remains (on a local disk: a temp file that removeStaleTempFiles removes).
 */
export interface PartWriter {
  append(data: Uint8Array | readonly Uint8Array[]): Promise<void>;
  /** Stores what was appended under `name`, atomically as `write` does. The writer is done with. */
  commit(name: string): Promise<void>;
  /** Drops what was appended; never fails. The writer is done with. */
  abort(): Promise<void>;
}

/**
 * A PartWriter for a backend that stores files whole (in memory, S3, test wrappers): copies of the parts are
 * kept until `commit` hands them to `write`, so the writer holds the file after all.
 */
export function partsKept(write: (name: string, parts: Buffer[]) => Promise<void>): PartWriter {
  let parts: Buffer[] = [];
  return {
    async append(data) {
      for (const d of data instanceof Uint8Array ? [data] : data) parts.push(Buffer.from(d));
    },
    async commit(name) {
      const all = parts;
      parts = [];
      await write(name, all);
    },
    async abort() {
      parts = [];
    },
  };
}

/**
 * A `reference` is a small, named, mutable file that points into the repository for readers outside
 * the engine (e.g. `latest`: the newest valid generation, for scripts). It is rewritten whole and
 * durably: a reader sees the old or the new content, even after a crash.
 */
export interface Storage {
  /** Human-readable location, for messages. */
  readonly location: string;
  /**
   * How long a file just written may take to appear in this backend's listings (ms); absent or 0: at once.
   * Locks wait this long between writing their own file and listing the others (see lock.ts).
   */
  readonly listingLagMs?: number;
  /** Every complete file of a type (never a file being written). */
  list(type: FileType): AsyncIterable<FileInfo>;
  /**
   * Bytes [offset, offset+length) of a file; fails when the file is shorter than asked, and with an error
   * whose `code` is 'ENOENT' when it does not exist.
   */
  read(type: FileType, name: string, offset?: number, length?: number): Promise<Buffer>;
  /** Stores a whole file atomically: readers see all of it or none of it, even after a crash. */
  write(type: FileType, name: string, data: Buffer | readonly Uint8Array[]): Promise<void>;
  /**
   * A file written a part at a time and named once complete (see PartWriter): a pack's name is the hash of all
   * its bytes, so its writer would otherwise hold the whole pack. Committed, it is stored as `write` stores one.
   */
  writeParts(type: FileType): PartWriter;
  /** Removes a file; removing a missing file is not an error. */
  delete(type: FileType, name: string): Promise<void>;
  /** Size of a file, or null when it does not exist. */
  stat(type: FileType, name: string): Promise<FileInfo | null>;
  /**
   * Removes what writers that died mid-write left behind (temp files) and returns how many. Optional:
   * a backend whose writes are atomic by nature has nothing to clean.
   */
  removeStaleTempFiles?(): Promise<number>;
  /**
   * Makes the repository's files readable and writable by their owner only (folders 0700, files 0600) and
   * returns how many were changed. Optional: a backend without permission bits has nothing to tighten.
   */
  restrictAccess?(): Promise<number>;
  /** Repository files or folders that others than their owner can read or write, for `check` to warn about. */
  accessProblems?(): Promise<string[]>;
  /**
   * Where a file is on a local file system, for a worker thread that reads it itself (`check --read-data`
   * streams packs through a small window). Optional: a backend without local files reads through `read`.
   */
  localPath?(type: FileType, name: string): string;
}
