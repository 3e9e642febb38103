// The agent protocol's shapes, shared by the agent (server.ts) and the coordinator's client (client.ts). See README.md.

import type { PartRecord } from '../dataprotect/generation/format.js';
import type { PartRequest, TreeRestoreDone, TreeRestoreRequest } from '../dataprotect/generation/part-agents.js';

export const PROTOCOL_VERSION = 1;
export const BACKUP_PATH = '/v1/parts/backup';
export const HEALTH_PATH = '/v1/health';
export const RESTORE_PATH = '/v1/parts/restore';

/** One line of a backup's answer (JSON lines): `started`, then `progress` and `log` lines, then one `result`. */
export type BackupLine =
  | { type: 'started'; agent: AgentIdentity }
  | { type: 'progress'; bytes: number }
  | { type: 'log'; level: 'info' | 'warn'; message: string }
  | { type: 'result'; part: PartRecord };

/** One line of a restore's answer: `started`, `progress` and `log` lines, then `restored` or `failed`. */
export type RestoreLine =
  | { type: 'started'; agent: AgentIdentity }
  | { type: 'progress'; bytes: number; bytesTotal: number; files: number; filesTotal: number }
  | { type: 'log'; level: 'info' | 'warn'; message: string }
  | { type: 'restored'; done: TreeRestoreDone }
  | { type: 'failed'; message: string };

export interface AgentIdentity {
  /** The server uid the agent serves. */
  server: string;
  /** The address it listens on (the server's own). */
  address: string;
  protocol: number;
}

/** A request body's fields, checked (a bad one is a 400 naming the field). */
export function parsePartRequest(body: unknown): PartRequest | string {
  if (!body || typeof body !== 'object') return 'the body must be a JSON object';
  const b = body as Record<string, unknown>;
  for (const f of ['generation', 'server', 'tag', 'time', 'repository'] as const) {
    if (typeof b[f] !== 'string' || !(b[f] as string).length || (b[f] as string).length > 4096) return `${f} must be a non-empty string`;
  }
  if (Number.isNaN(Date.parse(b.time as string))) return 'time must be an ISO 8601 date';
  return { generation: b.generation as string, server: b.server as string, tag: b.tag as string, time: b.time as string, repository: b.repository as string };
}

export function parseRestoreRequest(body: unknown): TreeRestoreRequest | string {
  if (!body || typeof body !== 'object') return 'the body must be a JSON object';
  const b = body as Record<string, unknown>;
  for (const f of ['repository', 'generation', 'key', 'tag', 'server', 'snapshot'] as const) {
    if (typeof b[f] !== 'string' || !(b[f] as string).length || (b[f] as string).length > 4096) return `${f} must be a non-empty string`;
  }
  const pairs = (v: unknown, a: string, c: string) =>
    Array.isArray(v) && v.length <= 64 && v.every((x) => x && typeof x === 'object' && typeof (x as Record<string, unknown>)[a] === 'string' && typeof (x as Record<string, unknown>)[c] === 'string');
  if (!pairs(b.locations, 'virtualPath', 'fsPath')) return 'locations must be a list of {virtualPath, fsPath}';
  if (!pairs(b.changes, 'from', 'to')) return 'changes must be a list of {from, to}';
  return {
    repository: b.repository as string, generation: b.generation as string, key: b.key as string, tag: b.tag as string, server: b.server as string,
    snapshot: b.snapshot as string, locations: b.locations as TreeRestoreRequest['locations'], changes: b.changes as TreeRestoreRequest['changes'],
  };
}
