// Which process backs up a server's parts. A single-server installation has none to ask: the coordinator backs
// up its own server in-process. In a multi-server installation each server runs a node agent, and the
// coordinator asks it for that server's parts (server/agent implements this over HTTP).

import type { HostServer, Tag } from '../../host/port.js';
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

export interface PartAgent {
  /** Where the agent answers, for messages (no secret in it). */
  readonly endpoint: string;
  /** Never throws: an unreachable or failing agent gives the part INVALID with the reason. */
  backup(req: PartRequest, call: PartAgentCall): Promise<PartRecord>;
  /** Restores a file part on the agent's server; throws with the reason (the global restore stops, resumable). */
  restoreTree?(req: TreeRestoreRequest, call: TreeRestoreCall): Promise<TreeRestoreDone>;
}

/** The agent serving a server, or null when the coordinator serves it itself. */
export type PartAgents = (server: HostServer) => PartAgent | null;
