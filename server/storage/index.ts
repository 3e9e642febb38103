/** Where repository files live: backends of the engine's Storage interface, and the one way to open a location. */
export { LocalStorage } from './local.js';
export { MemoryStorage } from './memory.js';
export { S3Storage } from './s3.js';
export { openStorage, SUPPORTED_LOCATIONS } from './open.js';
export { DEFAULT_STORAGE_TIMEOUT_MS, GuardedStorage, guardStorage, storageTimeoutFromEnv, type GuardOptions } from './guarded.js';
export { FaultyStorage, type Fault, type FaultPlan, type StorageCall } from './faulty.js';
export { environmentPassword, PASSWORD_ENV, PASSWORD_FILE_ENV, passwordConfigured, passwordFromEnvironment, readPasswordFile } from './password.js';
