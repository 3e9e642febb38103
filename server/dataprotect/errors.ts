// Domain errors. The HTTP layer maps each to a problem document; the domain knows nothing of status codes.

/** "Not found" has one class, the engine's: a missing snapshot and a missing generation are answered alike. */
export { NotFoundError } from '../engine/index.js';

export class DomainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class ForbiddenError extends DomainError {}

/** Input that the contract allows but the domain refuses (a relative repository path, a date in the future...). */
export class InvalidInputError extends DomainError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** The work conflicts with a running task (two restores of one entity, forgetting during a backup...). */
export class ConflictError extends DomainError {
  constructor(
    message: string,
    readonly taskId?: string,
  ) {
    super(message);
  }
}

export type Capability = 'backup-runner' | 'generations' | 'restore' | 'global-restore' | 'rehearsal';

/**
 * A capability this registration of the plugin does not offer. Answered as 501 with the message, never with
 * invented data.
 */
export class CapabilityUnavailableError extends DomainError {
  constructor(
    readonly capability: Capability,
    message: string,
  ) {
    super(message);
  }
}
