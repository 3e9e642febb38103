/** The repository engine: a library with no knowledge of HTTP, BlueMind or SQL. See API.md and FORMAT.md. */
export { Archiver, type BackupOptions, type BackupProgress, type FileStatus } from './archiver.js';
export { BlobIndex, BlobIdSet, BlobType, type BlobLocation } from './blob-index.js';
export { check, type CheckOptions, type CheckResult } from './check.js';
export { cutsInto, gearTable, StreamChunker } from './chunker.js';
export { diffSnapshots, type Change, type ChangeKind } from './diff.js';
export * from './errors.js';
export { applyPolicy, groupSnapshots, type ForgetPolicy, type PolicyDecision } from './forget.js';
export { DEFAULT_CONFIG, FORMAT_VERSION, type ChunkerParams, type RepositoryConfig } from './format.js';
export { sha256, toHex, fromHex, shortId } from './hash.js';
export { readLocks, RepositoryLock, type LockInfo } from './lock.js';
export { prune, type PruneOptions, type PruneSummary } from './prune.js';
export { findNode, openFile, readDir, walkTree } from './reader.js';
export { contentDigest, openContent } from './content.js';
export { PROGRAM, Repository, type InitOptions, type SnapshotFilter } from './repository.js';
export { restore, type RestoreOptions, type RestoreProgress, type RestoreSummary } from './restorer.js';
export { filesSeen, type BackupSummary, type Snapshot, type SnapshotInfo } from './snapshot.js';
export type { FileInfo, FileType, Storage } from './storage.js';
export type { NodeType, Tree, TreeNode } from './tree.js';
export { forgetSnapshots } from './forget-run.js';

import { LocalStorage } from '../storage/local.js';
import type { Storage } from './storage.js';
import { Repository, type InitOptions } from './repository.js';

/** Convenience for callers that only know a directory. */
export function openRepository(storage: Storage): Promise<Repository> {
  return Repository.open(storage);
}
export function initRepository(storage: Storage, opts?: InitOptions): Promise<Repository> {
  return Repository.init(storage, opts);
}
export { LocalStorage };
