import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGenerations } from '../../server/dataprotect/generation/format.js';
import { runGeneration } from '../../server/dataprotect/generation/run.js';
import { jsonLines, runCli } from '../engine/cli-helpers.js';
import { seededHost, type BackupFixture } from './helpers.js';

// The command line's retention options and `generation protect|unprotect`, as separate processes.

let f: BackupFixture;
let env: NodeJS.ProcessEnv;
beforeAll(async () => {
  f = await seededHost('cli-retention', 1);
  const d = f.sb.db;
  env = { DATABASE_URL: `postgres://${d.user}@${d.host}:${d.port}/${d.database}` };
});
afterAll(async () => {
  await f?.cleanup();
});

const summary = (stdout: string) => jsonLines(stdout).find((l) => l.type === 'summary') as Record<string, unknown>;

describe('bm-dataprotect generation backup refuses a retention policy it cannot apply', () => {
  const cases: [string, string[], RegExp][] = [
    ['0 days', ['--retention-days', '0'], /--retention-days must be a whole number of days from 1 to 3650, got 0; nothing was backed up/],
    ['too many weeks', ['--keep-weekly', '521'], /--keep-weekly must be a whole number of weeks from 0 to 520, got 521/],
    ['too many months', ['--keep-monthly', '1000'], /--keep-monthly must be a whole number of months from 0 to 240/],
    ['1.5 days', ['--retention-days', '1.5'], /expected a whole number/],
    ['a negative number of days', ['--retention-days=-1'], /expected a whole number/],
  ];
  for (const [name, options, message] of cases) {
    it(`${name}: exit 2 before anything is backed up`, async () => {
      const repo = `${f.repoDir}-never-created`;
      const r = await runCli(['generation', 'backup', '--repo', repo, '--host-root', f.sb.root, '--no-post-script', ...options], { env });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(existsSync(repo)).toBe(false);
    });
  }

  it('--no-retention runs without looking at the policy', async () => {
    const r = await runCli(['generation', 'backup', '--repo', f.repoDir, '--host-root', f.sb.root, '--no-post-script', '--no-emails', '--no-retention', '--retention-days', '0', '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(summary(r.stdout)).toMatchObject({ runStatus: 'OK', retention: null });
  });
});

describe('bm-dataprotect generation protect|unprotect', () => {
  it('marks a generation in the repository, which list shows, and clears the mark', async () => {
    const made = await runGeneration({ repo: f.repo, host: f.host, trigger: 'cli', productVersion: 'test', backupEmails: false, backupArchivedEmails: false, skippedTags: [] });
    const id = made.generation.id;
    const protect = await runCli(['generation', 'protect', id, '--repo', f.repoDir, '--json'], { env });
    expect(protect.code, protect.stderr).toBe(0);
    expect(summary(protect.stdout)).toMatchObject({ changed: true, generation: { id, protected: true } });
    const text = await runCli(['generation', 'protect', id, '--repo', f.repoDir], { env });
    expect(text.stdout).toContain(`generation ${id} was already protected: kept whatever the retention policy`);

    const list = await runCli(['generation', 'list', '--repo', f.repoDir]);
    expect(list.stdout.split('\n').find((l) => l.startsWith(id))).toMatch(/ protected/);
    const listed = summary((await runCli(['generation', 'list', '--repo', f.repoDir, '--json'])).stdout) as { generations: { id: string; protected: boolean }[] };
    expect(listed.generations.filter((g) => g.protected).map((g) => g.id)).toEqual([id]);

    const unprotect = await runCli(['generation', 'unprotect', id, '--repo', f.repoDir, '--json'], { env });
    expect(unprotect.code, unprotect.stderr).toBe(0);
    expect(summary(unprotect.stdout)).toMatchObject({ changed: true, generation: { id, protected: false } });
    expect((await readGenerations(f.repo)).find((g) => g.record.id === id)?.record.protected).toBe(false);

    const missing = await runCli(['generation', 'protect', '20990101-000000-ffff', '--repo', f.repoDir], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no generation 20990101-000000-ffff');
  });
});

describe('bm-dataprotect generation backup --recovery-point', () => {
  it('backs up the mail parts alone as a recovery point, which list marks; latest stays a full generation', async () => {
    const r = await runCli(['generation', 'backup', '--repo', f.repoDir, '--host-root', f.sb.root, '--no-post-script', '--recovery-point', '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    const s = summary(r.stdout) as { generation: { id: string; trigger: string; parts: { tag: string }[] }; retention: unknown; hook: unknown };
    expect(s.generation.trigger).toBe('recovery-point');
    expect(s.generation.parts.map((p) => p.tag)).toEqual(['mail/imap']);
    expect(s.retention).toBeNull();
    expect(s.hook).toBeNull();
    const list = await runCli(['generation', 'list', '--repo', f.repoDir]);
    expect(list.stdout.split('\n').find((l) => l.startsWith(s.generation.id))).toMatch(/ mail recovery point/);
    const listed = summary((await runCli(['generation', 'list', '--repo', f.repoDir, '--json'])).stdout) as { latest: string | null };
    expect(listed.latest).not.toBe(s.generation.id);
  });

  const refused: [string, string[], RegExp][] = [
    ['without mail', ['--no-emails'], /--recovery-point backs up mail: it cannot be combined with --no-emails/],
    ['as the daily schedule', ['--scheduled'], /--recovery-point and --scheduled/],
    ['kept 31 days', ['--recovery-point-days', '31'], /--recovery-point-days must be a whole number of days from 1 to 30, got 31/],
  ];
  for (const [name, options, message] of refused) {
    it(`${name}: exit 2, nothing backed up`, async () => {
      const repo = `${f.repoDir}-rp-never-created`;
      const r = await runCli(['generation', 'backup', '--repo', repo, '--host-root', f.sb.root, '--no-post-script', '--recovery-point', ...options], { env });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(existsSync(repo)).toBe(false);
    });
  }
});
