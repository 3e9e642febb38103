// The coordinator's side of the agent protocol: one part asked of a node agent, its JSON lines read as they
// come. Whatever goes wrong (unreachable, refused, killed mid-part) becomes the part's INVALID status and reason.

import type { PartRecord } from '../dataprotect/generation/format.js';
import { failedPart } from '../dataprotect/generation/part-backup.js';
import type {
  EntityRestoreCall, EntityRestoreRequest, PartAgent, PartAgentCall, PartRequest, TreeRestoreCall, TreeRestoreDone, TreeRestoreRequest,
} from '../dataprotect/generation/part-agents.js';
import { BACKUP_PATH, ENTITY_RESTORE_PATH, RESTORE_PATH, type BackupLine, type EntityRestoreLine, type RestoreLine } from './protocol.js';

/** How long an agent may stay silent (it sends a line at least every 10 s while it works) before it counts as gone. */
export const DEFAULT_IDLE_MS = 120_000;

/**
 * A deadline that moves with each sign of life: an agent that stopped (SIGSTOP, a hung disk, a network cut without
 * a reset) ends the call instead of holding the run forever.
 */
function idleGuard(idleMs: number, outer?: AbortSignal) {
  const idle = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(new Error(`sent nothing for ${idleMs >= 1000 ? `${Math.round(idleMs / 1000)} s` : `${idleMs} ms`}`)), idleMs);
  };
  touch();
  return {
    signal: outer ? AbortSignal.any([outer, idle.signal]) : idle.signal,
    touch,
    idle: () => idle.signal.aborted,
    done: () => clearTimeout(timer),
  };
}

/** `secret` is read when a part is asked for, so that a rotated secret file needs no restart. */
export function httpPartAgent(endpoint: string, secret: () => Promise<string | undefined>, o: { idleMs?: number } = {}): PartAgent {
  const base = endpoint.replace(/\/+$/, '');
  const idleMs = o.idleMs ?? DEFAULT_IDLE_MS;
  return {
    endpoint: base,
    async backup(req: PartRequest, call: PartAgentCall): Promise<PartRecord> {
      const begin = new Date();
      const fail = (m: string) => failedPart(req, begin, m);
      let s: string | undefined;
      try {
        s = await secret();
      } catch (err) {
        return fail((err as Error).message);
      }
      if (!s) return fail(`no agent secret is configured on the coordinator: set DP_AGENT_SECRET_FILE to the file the agents use`);
      const guard = idleGuard(idleMs, call.signal);
      try {
        return await backupGuarded(req, call, s, guard, fail);
      } finally {
        guard.done();
      }
    },

    async restoreTree(req: TreeRestoreRequest, call: TreeRestoreCall): Promise<TreeRestoreDone> {
      const where = `part ${req.key}: the agent of ${req.server} at ${base}`;
      const s = await secret();
      if (!s) throw new Error(`${where}: no agent secret is configured on the coordinator: set DP_AGENT_SECRET_FILE to the file the agents use`);
      const guard = idleGuard(idleMs, call.signal);
      try {
        return await restoreGuarded(req, call, s, guard, where);
      } finally {
        guard.done();
      }
    },

    async restoreEntity(req: EntityRestoreRequest, call: EntityRestoreCall): Promise<Record<string, unknown>> {
      const where = `the agent of ${req.server} at ${base}`;
      const s = await secret();
      if (!s) throw new Error(`${req.operation} runs on ${where}, but no agent secret is configured on the coordinator: set DP_AGENT_SECRET_FILE to the file the agents use`);
      const guard = idleGuard(idleMs, call.signal);
      try {
        return await entityGuarded(req, call, s, guard, where);
      } finally {
        guard.done();
      }
    },
  };

  async function entityGuarded(req: EntityRestoreRequest, call: EntityRestoreCall, s: string, guard: ReturnType<typeof idleGuard>, where: string): Promise<Record<string, unknown>> {
    let res: Response;
    try {
      res = await fetch(`${base}${ENTITY_RESTORE_PATH}`, {
        method: 'POST', headers: { authorization: `Bearer ${s}`, 'content-type': 'application/json' }, body: JSON.stringify(req), signal: guard.signal,
      });
    } catch (err) {
      if (call.signal?.aborted) throw call.signal.reason instanceof Error ? call.signal.reason : new Error('cancelled');
      throw new Error(`${where} is unreachable (${causeOf(err)}); nothing was restored: start the agent on ${req.server} ('bm-dataprotect agent'), or check DP_AGENTS, then run the restore again`);
    }
    if (res.status !== 200 || !res.body) {
      let reason = await refusalReason(res);
      if (res.status === 401) reason = "it refused the coordinator's secret: give the coordinator and every agent the same DP_AGENT_SECRET_FILE";
      throw new Error(`${where} refused the restore (HTTP ${res.status}): ${reason}`);
    }
    let result: Record<string, unknown> | null = null;
    let failed: string | null = null;
    try {
      for await (const line of lines(res.body)) {
        guard.touch();
        const l = JSON.parse(line) as EntityRestoreLine;
        if (l.type === 'progress') {
          const { type: _t, ...p } = l;
          if (Object.keys(p).length) call.progress(p);
        } else if (l.type === 'log') call.log(l.level, l.message, l.phrase);
        else if (l.type === 'result') result = l.result;
        else if (l.type === 'failed') failed = l.message;
      }
    } catch (err) {
      if (call.signal?.aborted) throw call.signal.reason instanceof Error ? call.signal.reason : new Error('cancelled');
      const why = guard.idle() ? `it ${reasonOf(guard.signal)}` : causeOf(err);
      throw new Error(`${where} stopped answering during the restore (${why}); check the agent, then run the restore again`);
    }
    if (failed !== null) throw new Error(`${where}: ${failed}`);
    if (!result) throw new Error(`${where} ended its answer without the outcome; check the agent's log`);
    return result;
  }

  async function backupGuarded(req: PartRequest, call: PartAgentCall, s: string, guard: ReturnType<typeof idleGuard>, fail: (m: string) => PartRecord): Promise<PartRecord> {
    let res: Response;
    try {
      res = await fetch(`${base}${BACKUP_PATH}`, {
        method: 'POST', headers: { authorization: `Bearer ${s}`, 'content-type': 'application/json' }, body: JSON.stringify(req), signal: guard.signal,
      });
    } catch (err) {
      if (call.signal?.aborted) return fail('not backed up: the run was cancelled');
      if (guard.idle()) return fail(`the agent of ${req.server} at ${base} accepted no call: it ${reasonOf(guard.signal)}; check that it runs and answers`);
      return fail(`the agent of ${req.server} at ${base} is unreachable (${causeOf(err)}): start it on that server ('bm-dataprotect agent'), or check DP_AGENTS`);
    }
    guard.touch();
    if (res.status === 401) {
      await res.body?.cancel().catch(() => {});
      return fail(`the agent at ${base} refused the coordinator's secret: give the coordinator and every agent the same DP_AGENT_SECRET_FILE`);
    }
    if (res.status !== 200 || !res.body) {
      return fail(`the agent at ${base} refused the part (HTTP ${res.status}): ${await refusalReason(res)}`);
    }
    let part: PartRecord | null = null;
    try {
      for await (const line of lines(res.body)) {
        guard.touch();
        let l: BackupLine;
        try {
          l = JSON.parse(line) as BackupLine;
        } catch {
          throw new Error(`an answer line is not JSON: ${line.slice(0, 80)}`);
        }
        if (l.type === 'progress') call.bytes(l.bytes);
        else if (l.type === 'log') (l.level === 'warn' ? call.log?.warn : call.log?.info)?.call(call.log, l.message);
        else if (l.type === 'started') call.bytes(0);
        else if (l.type === 'result') part = l.part;
      }
    } catch (err) {
      if (call.signal?.aborted) return fail('not backed up: the run was cancelled');
      const why = guard.idle() ? `it ${reasonOf(guard.signal)}` : causeOf(err);
      return fail(`the agent at ${base} stopped answering while backing up the part (${why}); nothing of it is in this generation: check that the agent runs`);
    }
    if (!part) return fail(`the agent at ${base} ended its answer without the part's result; nothing of it is in this generation: check the agent's log`);
    if (part.server !== req.server || part.tag !== req.tag) return fail(`the agent at ${base} answered for ${part.server} ${part.tag}, not for this part`);
    return part;
    }

  async function restoreGuarded(req: TreeRestoreRequest, call: TreeRestoreCall, s: string, guard: ReturnType<typeof idleGuard>, where: string): Promise<TreeRestoreDone> {
    let res: Response;
    try {
      res = await fetch(`${base}${RESTORE_PATH}`, {
        method: 'POST', headers: { authorization: `Bearer ${s}`, 'content-type': 'application/json' }, body: JSON.stringify(req), signal: guard.signal,
      });
    } catch (err) {
      throw new Error(`${where} is unreachable (${causeOf(err)}): start it on that server, then run the restore again (it resumes)`);
    }
    if (res.status !== 200 || !res.body) {
      throw new Error(`${where} refused the restore (HTTP ${res.status}): ${await refusalReason(res)}`);
    }
    let done: TreeRestoreDone | null = null;
    let failed: string | null = null;
    try {
      for await (const line of lines(res.body)) {
        guard.touch();
        const l = JSON.parse(line) as RestoreLine;
        if (l.type === 'progress') call.progress(l.bytes, l.bytesTotal, l.files, l.filesTotal);
        else if (l.type === 'log') call.log?.info(l.message);
        else if (l.type === 'restored') done = l.done;
        else if (l.type === 'failed') failed = l.message;
      }
    } catch (err) {
      const why = guard.idle() ? `it ${reasonOf(guard.signal)}` : causeOf(err);
      throw new Error(`${where} stopped answering during the restore (${why}); run the restore again (it resumes)`);
    }
    if (failed !== null) throw new Error(`${where}: ${failed}`);
    if (!done) throw new Error(`${where} ended its answer without the outcome; check the agent's log`);
    return done;
  }
}

/** What an agent said when it refused a call: its JSON `error`, else the start of its answer. */
async function refusalReason(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    return (JSON.parse(text) as { error?: string }).error ?? text.slice(0, 300);
  } catch {
    return text.slice(0, 300); // not JSON: the text as it is
  }
}

function reasonOf(signal: AbortSignal): string {
  return signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
}

async function* lines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let rest = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    rest += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl).trim();
      rest = rest.slice(nl + 1);
      if (line) yield line;
    }
  }
  if (rest.trim()) yield rest.trim();
}

function causeOf(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message;
}
