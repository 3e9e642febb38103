import { EngineError, type EngineErrorKind } from '../engine/index.js';
import { UsageError } from './context.js';

/**
 * Exit codes of bm-dataprotect (documented in README): 0 success; 1 failure; 2 usage error; 3 backup saved
 * but some files could not be read; 10 no repository; 11 repository locked; 12 repository damaged; 13 the repository
 * is encrypted and its password is missing or wrong.
 */
export const EXIT = { ok: 0, failure: 1, usage: 2, partial: 3, noRepository: 10, locked: 11, damaged: 12, password: 13 } as const;

const BY_KIND: Record<EngineErrorKind, number> = {
  'repository-not-found': EXIT.noRepository,
  'lock-held': EXIT.locked,
  damaged: EXIT.damaged,
  password: EXIT.password,
  'not-found': EXIT.failure,
  failure: EXIT.failure,
};

/** The exit code a command that failed with `err` ends with. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof EngineError) return BY_KIND[err.kind] ?? EXIT.failure;
  return EXIT.failure;
}
