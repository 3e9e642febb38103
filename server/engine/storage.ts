/**
 * The small storage interface every backend implements (local directory / NFS now, S3 later).
 * Files are write-once: content-addressed names never get new content. Only locks are rewritten.
 */
export type FileType = 'config' | 'data' | 'index' | 'snapshot' | 'lock';

export const FILE_TYPES: readonly FileType[] = ['config', 'data', 'index', 'snapshot', 'lock'];

export interface FileInfo {
  name: string;
  size: number;
}

export interface Storage {
  /** Human-readable location, for messages. */
  readonly location: string;
  /** Every complete file of a type (never a file being written). */
  list(type: FileType): AsyncIterable<FileInfo>;
  /** Bytes [offset, offset+length) of a file; fails when the file is shorter than asked. */
  read(type: FileType, name: string, offset?: number, length?: number): Promise<Buffer>;
  /** Stores a whole file atomically: readers see all of it or none of it, even after a crash. */
  write(type: FileType, name: string, data: Buffer | readonly Uint8Array[]): Promise<void>;
  /** Removes a file; removing a missing file is not an error. */
  delete(type: FileType, name: string): Promise<void>;
  /** Size of a file, or null when it does not exist. */
  stat(type: FileType, name: string): Promise<FileInfo | null>;
}
