import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EngineError, type Storage } from '../engine/index.js';
import { LocalStorage } from './local.js';

/** The kinds of location this build can open, for messages. */
export const SUPPORTED_LOCATIONS = 'an absolute directory path or a file:// URL';

/**
 * The one place a repository location (settings, --repo) becomes a Storage. A relative path is refused: what it
 * means depends on the process's working directory, so the caller (the CLI) resolves it first.
 */
export function openStorage(location: string): Storage {
  if (/^file:/i.test(location)) {
    let path: string;
    try {
      path = fileURLToPath(location);
    } catch (err) {
      throw new EngineError(`repository location ${JSON.stringify(location)} is not a valid file:// URL (${(err as Error).message})`);
    }
    return new LocalStorage(path);
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(location)?.[1];
  if (scheme) {
    throw new EngineError(`repository location ${location}: ${scheme.toLowerCase()}:// repositories are not supported by this build; give ${SUPPORTED_LOCATIONS}`);
  }
  if (location === '' || !isAbsolute(location)) {
    throw new EngineError(`repository location ${JSON.stringify(location)} is not absolute; give ${SUPPORTED_LOCATIONS}`);
  }
  return new LocalStorage(location);
}
