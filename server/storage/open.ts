import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EngineError, type Storage } from '../engine/index.js';
import { guardStorage, type GuardOptions } from './guarded.js';
import { LocalStorage } from './local.js';
import { isS3Location } from './s3-location.js';
import { S3Storage } from './s3.js';

/** The kinds of location this build can open, for messages. */
export const SUPPORTED_LOCATIONS = 'an absolute directory path, a file:// URL or s3://BUCKET/PREFIX';

/**
 * The one place a repository location (settings, --repo) becomes a Storage. A relative path is refused: what it
 * means depends on the process's working directory, so the caller (the CLI) resolves it first.
 * Every call gets a timeout (DP_STORAGE_TIMEOUT_MS, 120 s by default), and `signal` cancels the calls in flight.
 */
export function openStorage(location: string, guard: GuardOptions = {}): Storage {
  return guardStorage(openBackend(location), guard);
}

function openBackend(location: string): Storage {
  if (/^file:/i.test(location)) {
    let path: string;
    try {
      path = fileURLToPath(location);
    } catch (err) {
      throw new EngineError(`repository location ${JSON.stringify(location)} is not a valid file:// URL (${(err as Error).message})`);
    }
    return new LocalStorage(path);
  }
  // Endpoint, credentials and region come from the AWS SDK's standard environment (AWS_ENDPOINT_URL_S3, ...).
  if (isS3Location(location)) return new S3Storage(location);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(location)?.[1];
  if (scheme) {
    throw new EngineError(`repository location ${location}: ${scheme.toLowerCase()}:// repositories are not supported by this build; give ${SUPPORTED_LOCATIONS}`);
  }
  if (location === '' || !isAbsolute(location)) {
    throw new EngineError(`repository location ${JSON.stringify(location)} is not absolute; give ${SUPPORTED_LOCATIONS}`);
  }
  return new LocalStorage(location);
}
