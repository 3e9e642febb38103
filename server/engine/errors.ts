/** Errors the engine raises, each with the process exit code the CLI maps it to. */
export class EngineError extends Error {
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The repository directory has no `config`: not initialised, or the wrong path. */
export class RepositoryNotFoundError extends EngineError {
  override readonly exitCode = 10;
}

/** Another process holds a conflicting lock that is not stale. */
export class LockHeldError extends EngineError {
  override readonly exitCode = 11;
}

/** The repository's files are missing, truncated or do not match their hashes. */
export class RepositoryDamagedError extends EngineError {
  override readonly exitCode = 12;
}

/** Something in the repository would make a restore leave its target (hostile or damaged tree). */
export class UnsafeTreeError extends RepositoryDamagedError {}

/** A snapshot, path or file asked for does not exist. */
export class NotFoundError extends EngineError {
  override readonly exitCode = 1;
}
