import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGenerations } from '../../server/dataprotect/generation/format.js';
import { check, Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { withClient } from '../../server/pg/client.js';
import { CLI, jsonLines, runCli } from '../engine/cli-helpers.js';
import { seededHost, type BackupFixture } from './helpers.js';

// The command line as separate processes: two at once, and one killed in the middle of a run.

let f: BackupFixture;
let env: NodeJS.ProcessEnv;
beforeAll(async () => {
  f = await seededHost('process', 4);
  const d = f.sb.db;
  env = { DATABASE_URL: `postgres://${d.user}@${d.host}:${d.port}/${d.database}` };
});
afterAll(async () => {
  await f?.cleanup();
});

const args = () => ['generation', 'backup', '--repo', f.repoDir, '--host-root', f.sb.root, '--no-post-script', '--json'];

async function generations() {
  const repo = await Repository.open(new LocalStorage(f.repoDir));
  try {
    return await readGenerations(repo);
  } finally {
    await repo.close();
  }
}

describe('bm-dataprotect generation (processes)', () => {
  it('two processes asked to run the schedule at the same moment produce one generation', async () => {
    const [a, b] = await Promise.all([runCli([...args(), '--scheduled'], { env }), runCli([...args(), '--scheduled'], { env })]);
    const summaries = [a, b].map((r) => jsonLines(r.stdout).find((l) => l.type === 'summary')!);
    expect([a.code, b.code]).toEqual([0, 0]);
    const skipped = summaries.filter((s) => typeof s.skipped === 'string');
    expect(skipped).toHaveLength(1);
    expect(String(skipped[0].skipped)).toMatch(/another process is running a backup|already ran today/);
    const gens = await generations();
    expect(gens).toHaveLength(1);
    expect(gens[0].record).toMatchObject({ trigger: 'schedule', status: 'VALID', runStatus: 'OK' });
    // The schedule does not run twice in a day; a manual run does.
    const third = await runCli([...args(), '--scheduled'], { env });
    expect(String(jsonLines(third.stdout).find((l) => l.type === 'summary')!.skipped)).toMatch(/already ran today/);
    const manual = await runCli(args(), { env });
    expect(manual.code).toBe(0);
    expect(jsonLines(manual.stdout).find((l) => l.type === 'summary')!.runStatus).toBe('OK');

    const list = await runCli(['generation', 'list', '--repo', f.repoDir, '--json']);
    const listed = jsonLines(list.stdout).find((l) => l.type === 'summary') as { latest: string; generations: { id: string; status: string; parts: { server: string; tag: string; status: string; sizeRead: number }[] }[] };
    // Retention kept both runs of the day: nothing younger than 48 hours is thinned.
    expect(listed.generations).toHaveLength(2);
    expect(listed.latest).toBe(listed.generations[0].id);
    expect(listed.generations[0].parts.map((p) => `${p.server} ${p.tag} ${p.status}`)).toContain('bm-mail mail/imap VALID');

    // sync writes the plugin's table from the repository alone; forget removes a generation and moves latest.
    const sync = await runCli(['generation', 'sync', '--repo', f.repoDir, '--json'], { env });
    expect(sync.code, sync.stderr).toBe(0);
    const cached = await withClient(f.sb.db, async (c) => (await c.query('SELECT id, record FROM dp_generation WHERE repository = $1 ORDER BY protection_time DESC', [f.repoDir])).rows);
    expect(cached.map((r) => r.id)).toEqual(listed.generations.map((g) => g.id));
    expect(cached[0].record.parts.length).toBe(listed.generations[0].parts.length);
    const [newest, older] = listed.generations.map((g) => g.id);
    const forget = await runCli(['generation', 'forget', '--repo', f.repoDir, newest, '--json'], { env });
    expect(forget.code, forget.stderr).toBe(0);
    expect(jsonLines(forget.stdout).find((l) => l.type === 'summary')).toMatchObject({ forgotten: newest, latest: older });
    const last = await runCli(['generation', 'forget', '--repo', f.repoDir, older, '--json'], { env });
    expect(jsonLines(last.stdout).find((l) => l.type === 'summary')).toMatchObject({ forgotten: older, latest: null });
    expect(await generations()).toEqual([]);
    const missing = await runCli(['generation', 'list', '--repo', `${f.repoDir}-nowhere`]);
    expect(missing.code).toBe(10);
  });

  it('a process killed in the middle of a run leaves a repository that check accepts, and the next run cleans up and succeeds', async () => {
    // Hold a table lock so that pg_dump waits inside the database part, then kill the run there.
    const lockHolder = withClient(f.sb.db, async (c) => {
      await c.query('BEGIN');
      await c.query('LOCK TABLE t_domain IN ACCESS EXCLUSIVE MODE');
      const child = spawn(process.execPath, [CLI, ...args()], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise((r) => child.once('exit', r));
      try {
        let waited = false;
        for (const end = Date.now() + 120_000; !waited && Date.now() < end; ) {
          await c.query('SELECT pg_stat_clear_snapshot()'); // activity is a snapshot inside a transaction
          const waiting = await c.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock' AND datname = current_database()`);
          waited = Boolean(waiting.rowCount);
          if (!waited) await new Promise((r) => setTimeout(r, 100));
        }
        expect(waited, 'pg_dump never waited for the table lock').toBe(true);
        child.kill('SIGKILL');
        await exited;
      } finally {
        await c.query('ROLLBACK');
      }
    });
    await lockHolder;
    const before = await generations();
    const interrupted = before.filter((g) => g.interrupted);
    expect(interrupted).toHaveLength(1);
    expect(interrupted[0].record.status).toBe('INVALID');

    const repo = await Repository.open(new LocalStorage(f.repoDir));
    const c = await check(repo);
    await repo.close();
    expect(c.errors).toEqual([]);

    const next = await runCli(args(), { env });
    expect(next.code, next.stderr).toBe(0);
    const summary = jsonLines(next.stdout).find((l) => l.type === 'summary') as { runStatus: string; cleaned: string[] };
    expect(summary.runStatus).toBe('OK');
    expect(summary.cleaned).toEqual([interrupted[0].record.id]);
    const after = await generations();
    expect(after.some((g) => g.interrupted)).toBe(false);
    const repo2 = await Repository.open(new LocalStorage(f.repoDir));
    const c2 = await check(repo2, { readData: true });
    await repo2.close();
    expect(c2.errors).toEqual([]);
  });
});
