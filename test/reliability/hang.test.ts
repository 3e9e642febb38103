import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createPool } from '../../server/pg/client.js';
import { built, startConsoleProcess, waitFor, type ConsoleProcess } from './console-process.js';

// A repository on an NFS server that went away: every call on it waits forever. Without FUSE, a FIFO in place of
// the repository's config file does the same: opening it blocks until a writer comes, which never happens.

const consoles: ConsoleProcess[] = [];
afterAll(async () => {
  for (const c of consoles) await c.cleanup();
});

type Client = ReturnType<typeof import('../../openapi/client.js').createClient>;

async function clientOf(c: ConsoleProcess): Promise<Client> {
  const { createClient } = (await import(path.resolve('dist/openapi/client.js'))) as typeof import('../../openapi/client.js');
  return createClient({ baseUrl: `${c.url}/api/dataprotect`, apiKey: c.key });
}

/** Points the settings at an empty folder (a valid location), then makes the folder hang. */
async function hangingRepository(c: ConsoleProcess, client: Client): Promise<string> {
  const dir = path.join(c.work, 'nfs-gone');
  mkdirSync(dir);
  const s = await client.getSettings();
  await client.updateSettings({
    retentionDays: s.retentionDays, backupEmails: s.backupEmails, backupArchivedEmails: s.backupArchivedEmails,
    backupTime: s.backupTime, skippedTags: s.skippedTags, repositoryLocation: dir,
  });
  execFileSync('mkfifo', [path.join(dir, 'config')]);
  return dir;
}

it.skipIf(!built)('a backup to a repository that never answers is reported stuck, stops on cancel within seconds, and SIGTERM stops the console within 10 s leaving the task INTERRUPTED', async () => {
  const c = await startConsoleProcess({ DP_TASK_STUCK_MS: '1000', UV_THREADPOOL_SIZE: '16' });
  consoles.push(c);
  const client = await clientOf(c);
  await hangingRepository(c, client);

  // Stays running while the repository does not answer, and the watchdog says why, in the log and the status.
  const first = (await client.startBackup()).task;
  const stuck = await waitFor('the stuck report', async () => {
    const t = await client.getTask(first.id);
    return t.progress.message?.startsWith('stuck:') ? t : undefined;
  }, 60_000);
  expect(stuck.status).toBe('RUNNING');
  expect(stuck.progress.message).toMatch(/no progress for \d+ s/);
  expect((await client.getTaskLog(first.id)).some((e) => e.level === 'warn' && /^stuck: no progress/.test(e.message))).toBe(true);

  // Cancel ends it within seconds, not "Cancelling…" forever (the repository never answers, so without the
  // cancel's own bound it would not end at all; the test's bounds are loose for a busy machine).
  const cancelAt = Date.now();
  await client.cancelTask(first.id);
  const cancelled = await waitFor('the cancelled task', async () => {
    const t = await client.getTask(first.id);
    return t.status === 'RUNNING' ? undefined : t;
  }, 45_000);
  expect(cancelled.status).toBe('CANCELLED');
  expect(Date.now() - cancelAt).toBeLessThan(30_000);

  // SIGTERM during a hanging backup: the process exits within 10 s and the task is recorded INTERRUPTED.
  const second = (await client.startBackup()).task;
  expect(second.status).toBe('RUNNING');
  await waitFor('the second run to begin', async () => ((await client.getTaskLog(second.id)).length ? true : undefined), 10_000).catch(() => true);
  // The console bounds its own stop at 9 s; the test allows more, for a busy machine's scheduling: a console
  // that waited for the hanging I/O would never exit.
  const termAt = Date.now();
  c.child.kill('SIGTERM');
  const code = await Promise.race([c.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 30_000))]);
  expect(code, c.output()).not.toBe('still running');
  expect(Date.now() - termAt).toBeLessThan(30_000);
  // And it ended by its own bounded stop (at most 9 s after the signal), not by anything else.
  expect(c.output()).toMatch(/bm-dataprotect console: (stopped|not stopped after 9 s, exiting anyway)/);
  const pool = createPool(c.databaseUrl);
  try {
    const row = (await pool.query<{ status: string; error: string | null }>('SELECT status, error FROM dp_task WHERE id = $1', [second.id])).rows[0];
    const log = (await pool.query('SELECT * FROM dp_task_log WHERE task_id = $1 ORDER BY seq', [second.id]).catch((e) => ({ rows: [String(e)] }))).rows;
    expect(row.status, JSON.stringify({ row, log })).toBe('INTERRUPTED');
    expect(row.error).toMatch(/the server stop/);
  } finally {
    await pool.end();
  }
}, 300_000);
