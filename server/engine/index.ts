/** The repository engine: a library with no knowledge of HTTP, BlueMind or SQL. See API.md and FORMAT.md. */
export { Archiver, type BackupOptions, type BackupProgress, type FileStatus } from './archiver.js';
export { check, type CheckOptions, type CheckResult } from './check.js';
export { diffSnapshots, type Change, type ChangeKind } from './diff.js';
export * from './errors.js';
export { type ForgetPolicy, type PolicyDecision } from './forget-policy.js';
export { forgetSnapshots, type ForgetResult } from './forget-snapshots.js';
export { FORMAT_VERSION, type ChunkerParams, type RepositoryConfig } from './format.js';
export { sha256, toHex } from './hash.js';
export { StreamChunker } from './chunker.js';
export { processAlive, type LockInfo, type RepositoryLock } from './lock.js';
export { prune, type PruneOptions, type PruneSummary } from './prune.js';
export { findNode, openFile, readDir, walkTree } from './reader.js';
export { contentDigest, openContent } from './content.js';
export { PROGRAM, Repository, type InitOptions, type SnapshotFilter } from './repository.js';
export { restore, type RestoreOptions, type RestoreProgress, type RestoreSummary } from './restorer.js';
export { filesSeen, type BackupSummary, type Snapshot, type SnapshotInfo } from './snapshot.js';
export { RESERVED_REFERENCE_NAMES, type FileInfo, type FileType, type Storage } from './storage.js';
export type { NodeType, Tree, TreeNode } from './tree.js';
