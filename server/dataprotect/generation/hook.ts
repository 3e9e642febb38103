// The post-backup action: BlueMind's /usr/bin/bm-post-full-backup.sh, run after a successful run when it exists
// and is executable. It gets the generation in its environment (never the process's secrets), a timeout, and
// its output goes line by line into the run's log.

import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import type { RunStatus } from '../model.js';
import type { GenerationRecord } from './format.js';

export const DEFAULT_HOOK_TIMEOUT_MS = 30 * 60 * 1000;

export interface HookResult {
  ran: boolean;
  ok: boolean;
  exitCode: number | null;
  reason: string | null;
  durationMs: number;
}

export interface HookOptions {
  generation: GenerationRecord;
  runStatus: RunStatus;
  repository: string;
  timeoutMs?: number;
  log: { info(m: string): void; warn(m: string): void; error(m: string): void };
  signal?: AbortSignal;
}

/** What the script sees. Only these and a minimal PATH/HOME/LANG: no DATABASE_URL, no passwords, no API keys. */
export function hookEnvironment(o: Pick<HookOptions, 'generation' | 'runStatus' | 'repository'>): NodeJS.ProcessEnv {
  const g = o.generation;
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? '/',
    LANG: process.env.LANG ?? 'C.UTF-8',
    DP_GENERATION_ID: g.id,
    DP_GENERATION_DATE: g.protectionTime,
    DP_GENERATION_STATUS: g.status,
    DP_RUN_STATUS: o.runStatus,
    DP_REPOSITORY: o.repository,
    DP_LATEST: `${o.repository.replace(/\/+$/, '')}/latest`,
    /** One line per part: server, tag, status, snapshot id (tab-separated). */
    DP_PARTS: g.parts.map((p) => [p.server, p.tag, p.status, p.snapshot ?? '-'].join('\t')).join('\n'),
  };
}

export async function runPostBackupScript(script: string, o: HookOptions): Promise<HookResult> {
  const started = Date.now();
  const skipped = (reason: string): HookResult => ({ ran: false, ok: true, exitCode: null, reason, durationMs: 0 });
  const st = await stat(script).catch(() => null);
  if (!st) return skipped(`${script} does not exist`);
  if (!st.isFile()) return skipped(`${script} is not a file`);
  if (!(await access(script, constants.X_OK).then(() => true, () => false))) {
    o.log.warn(`post-backup action ${script} exists but is not executable: not run`);
    return skipped(`${script} is not executable`);
  }
  const timeoutMs = o.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
  o.log.info(`post-backup action: running ${script} (timeout ${Math.round(timeoutMs / 1000)} s)`);
  return new Promise<HookResult>((resolve) => {
    const child = spawn(script, [], { env: hookEnvironment(o), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let timedOut = false;
    const kill = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    const onAbort = () => kill();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const lines = (level: 'info' | 'warn') => {
      let buf = '';
      return {
        push: (b: Buffer) => {
          buf += b.toString('utf8');
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            o.log[level](`[post-backup] ${buf.slice(0, nl)}`);
            buf = buf.slice(nl + 1);
          }
        },
        end: () => buf && o.log[level](`[post-backup] ${buf}`),
      };
    };
    const out = lines('info');
    const err = lines('warn');
    child.stdout.on('data', out.push);
    child.stderr.on('data', err.push);
    child.once('error', (e) => {
      clearTimeout(timer);
      o.log.error(`post-backup action ${script} could not start: ${e.message}`);
      resolve({ ran: true, ok: false, exitCode: null, reason: `could not start: ${e.message}`, durationMs: Date.now() - started });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      out.end();
      err.end();
      const durationMs = Date.now() - started;
      if (code === 0) {
        o.log.info(`post-backup action ${script} succeeded`);
        resolve({ ran: true, ok: true, exitCode: 0, reason: null, durationMs });
        return;
      }
      const reason = timedOut ? `timed out after ${Math.round(timeoutMs / 1000)} s` : code !== null ? `exit code ${code}` : `killed by ${signal}`;
      o.log.error(`post-backup action ${script} failed: ${reason}`);
      resolve({ ran: true, ok: false, exitCode: code, reason, durationMs });
    });
  });
}
