// The agent protocol's shapes, shared by the agent (server.ts) and the coordinator's client (client.ts). See README.md.

import type { PartRecord } from '../dataprotect/generation/format.js';
import type { EntityRestoreRequest, PartRequest, TreeRestoreDone, TreeRestoreRequest } from '../dataprotect/generation/part-agents.js';

export const PROTOCOL_VERSION = 1;
export const BACKUP_PATH = '/v1/parts/backup';
export const HEALTH_PATH = '/v1/health';
export const RESTORE_PATH = '/v1/parts/restore';
export const ENTITY_RESTORE_PATH = '/v1/restores/entity';

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

/** One line of a single-entity restore's answer: `started`, `progress` and `log` lines, then `result` or `failed`. */
export type EntityRestoreLine =
  | { type: 'started'; agent: AgentIdentity }
  | { type: 'progress'; done?: number; total?: number | null; unit?: string | null; bytes?: number | null; message?: string | null }
  | { type: 'log'; level: 'info' | 'warn'; message: string; phrase?: { key: string; params: Record<string, string | number> } }
  | { type: 'result'; result: Record<string, unknown> }
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

export function parseEntityRestoreRequest(body: unknown): EntityRestoreRequest | string {
  if (!body || typeof body !== 'object') return 'the body must be a JSON object';
  const b = body as Record<string, unknown>;
  for (const f of ['repository', 'generation', 'server', 'operation'] as const) {
    if (typeof b[f] !== 'string' || !(b[f] as string).length || (b[f] as string).length > 4096) return `${f} must be a non-empty string`;
  }
  const e = b.entry as Record<string, unknown> | undefined;
  if (!e || typeof e !== 'object' || !['kind', 'uid', 'domainUid', 'displayName'].every((f) => typeof e[f] === 'string') || typeof e.deleted !== 'boolean' || !e.entity || typeof e.entity !== 'object') {
    return 'entry must be {kind, uid, domainUid, displayName, deleted, entity}';
  }
  const m = b.mailbox as Record<string, unknown> | undefined;
  if (m !== undefined && (!m || typeof m !== 'object' || !['server', 'maildir', 'partPath', 'imapLogin'].every((f) => typeof m[f] === 'string'))) {
    return 'mailbox must be {server, maildir, partPath, imapLogin, archive}';
  }
  if (m && m.archive !== null && (typeof m.archive !== 'object' || typeof (m.archive as Record<string, unknown>).dir !== 'string' || typeof (m.archive as Record<string, unknown>).partPath !== 'string')) {
    return 'mailbox.archive must be null or {dir, partPath}';
  }
  for (const f of ['folder', 'from', 'to'] as const) if (b[f] !== undefined && typeof b[f] !== 'string') return `${f} must be a string`;
  if (b.messageIds !== undefined && (!Array.isArray(b.messageIds) || !b.messageIds.every((x) => typeof x === 'string'))) return 'messageIds must be a list of strings';
  return b as unknown as EntityRestoreRequest;
}
