/**
 * What went wrong, in terms a caller can act on: the CLI turns a kind into its exit code, the HTTP layer
 * into a status. The engine itself knows nothing of either.
 */
export type EngineErrorKind = 'repository-not-found' | 'lock-held' | 'damaged' | 'not-found' | 'password' | 'failure';

/** Errors the engine raises, each with its kind. */
export class EngineError extends Error {
  readonly kind: EngineErrorKind = 'failure';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The repository has no `config`: not initialised, or the wrong location. */
export class RepositoryNotFoundError extends EngineError {
  override readonly kind: EngineErrorKind = 'repository-not-found';
}

/** The repository is encrypted and no password was given, or none of its keys opens with the one given. */
export class PasswordError extends EngineError {
  override readonly kind: EngineErrorKind = 'password';
  constructor(
    message: string,
    /** missing: none given; wrong: no key opens with it; unusable: the one given cannot be used (empty, a file others can read). */
    readonly reason: 'missing' | 'wrong' | 'unusable' = 'unusable',
    /** The repository's location, when the error is about one. */
    readonly location?: string,
  ) {
    super(message);
  }
}

/** Another process holds a conflicting lock that is not stale. */
export class LockHeldError extends EngineError {
  override readonly kind: EngineErrorKind = 'lock-held';
}

/** The repository's files are missing, truncated or do not match their hashes. */
export class RepositoryDamagedError extends EngineError {
  override readonly kind: EngineErrorKind = 'damaged';
}

/** Something in the repository would make a restore leave its target (hostile or damaged tree). */
export class UnsafeTreeError extends RepositoryDamagedError {}

/** The repository's storage has no room left: not the fault of what was being backed up. */
export class RepositoryFullError extends EngineError {
  readonly code = 'ENOSPC';
}

/** A snapshot, path or file asked for does not exist. */
export class NotFoundError extends EngineError {
  override readonly kind: EngineErrorKind = 'not-found';
}
