// Which process backs up a server's parts. A single-server installation has none to ask: the coordinator backs
// up its own server in-process. In a multi-server installation each server runs a node agent, and the
// coordinator asks it for that server's parts (server/agent implements this over HTTP). The coordinator may also
// run its own servers' parts in a low-priority process of its own, through the same protocol (a local agent).

import type { HostServer, MailboxLocation, Tag } from '../../host/port.js';
import type { PartRecord } from './format.js';

/** What the coordinator asks an agent for: one part of a generation, into the repository at `repository`. */
export interface PartRequest {
  generation: string;
  server: string;
  tag: Tag;
  /** The generation's time (ISO 8601). */
  time: string;
  /** The repository's location, as both the coordinator and the agent reach it (a shared folder or s3://). */
  repository: string;
}

export interface PartAgentCall {
  /** Bytes read so far on the agent. */
  bytes(n: number): void;
  log?: { info(m: string): void; warn(m: string): void };
  signal?: AbortSignal;
}

/** A global restore's file part, restored on the server that holds its data locations. */
export interface TreeRestoreRequest {
  repository: string;
  generation: string;
  /** `server tag` of the generation. */
  key: string;
  tag: Tag;
  /** The server of this installation the part goes to (the agent's own). */
  server: string;
  snapshot: string;
  /** Where the part goes on that server (each one of the server's own data locations). */
  locations: { virtualPath: string; fsPath: string }[];
  /** Server addresses the restored configuration must name anew. */
  changes: { from: string; to: string }[];
}

export interface TreeRestoreCall {
  progress(bytes: number, bytesTotal: number, files: number, filesTotal: number): void;
  log?: { info(m: string): void };
  signal?: AbortSignal;
}

export interface TreeRestoreDone {
  bytes: number;
  files: number;
  detail: string;
}

/**
 * A single-entity restore whose disk work happens on the server holding the entity's mail or file hosting: the
 * coordinator plans it (directory, checks), the agent reads the repository and writes its own server's data.
 */
export interface EntityRestoreRequest {
  repository: string;
  generation: string;
  /** The agent's own server. */
  server: string;
  operation: string;
  /** The entity as the generation saved it (a directory entity, without its containers). */
  entry: { kind: string; uid: string; domainUid: string; displayName: string; deleted: boolean; entity: Record<string, unknown> };
  /** Where the entity's mailbox lives now, as the coordinator's directory says (mail operations). */
  mailbox?: MailboxLocation;
  folder?: string;
  messageIds?: string[];
  /** undelete.mail's period (ISO 8601). */
  from?: string;
  to?: string;
}

export interface EntityRestoreCall {
  progress(p: { done?: number; total?: number | null; unit?: string | null; bytes?: number | null; message?: string | null }): void;
  log(level: 'info' | 'warn', message: string, phrase?: { key: string; params: Record<string, string | number> }): void;
  signal?: AbortSignal;
}

export interface PartAgent {
  /** Where the agent answers, for messages (no secret in it). */
  readonly endpoint: string;
  /**
   * The coordinator's own backup process (server/agent/local.ts), serving the servers it backs up itself: its
   * parts keep the coordinator's order (one after the other, mail last) instead of running per server at once.
   */
  readonly local?: boolean;
  /** Never throws: an unreachable or failing agent gives the part INVALID with the reason. */
  backup(req: PartRequest, call: PartAgentCall): Promise<PartRecord>;
  /** Restores a file part on the agent's server; throws with the reason (the global restore stops, resumable). */
  restoreTree?(req: TreeRestoreRequest, call: TreeRestoreCall): Promise<TreeRestoreDone>;
  /** Runs a single-entity restore's disk work on the agent's server; throws with the reason; answers the result. */
  restoreEntity?(req: EntityRestoreRequest, call: EntityRestoreCall): Promise<Record<string, unknown>>;
}

/** The agent serving a server, or null when the coordinator serves it itself. */
export type PartAgents = (server: HostServer) => PartAgent | null;
