import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGenerations } from '../../server/dataprotect/generation/format.js';
import { runGeneration } from '../../server/dataprotect/generation/run.js';
import { seededHost, type BackupFixture } from './helpers.js';

let f: BackupFixture;
let dir: string;
beforeAll(async () => {
  f = await seededHost('hook', 3);
  dir = await mkdtemp(path.join(tmpdir(), 'dp-hook-'));
});
afterAll(async () => {
  await f?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function script(name: string, body: string, mode = 0o755): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, `#!/bin/sh\n${body}\n`);
  await chmod(p, mode);
  return p;
}

const base = () => ({ repo: f.repo, host: f.host, trigger: 'api' as const, productVersion: 'test', backupEmails: true, backupArchivedEmails: false, skippedTags: [] });

describe('the post-backup action', () => {
  it('runs after a successful run with the generation in its environment (and no secrets), its output in the log', async () => {
    const envFile = path.join(dir, 'env.txt');
    const hook = await script('ok.sh', `env > ${envFile}\necho "copying $DP_GENERATION_ID"\necho "a warning" >&2`);
    const saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = 'postgres://bj:topsecret-pw@127.0.0.1/bj';
    const logs: string[] = [];
    let r;
    try {
      r = await runGeneration({ ...base(), postBackup: { script: hook }, log: { info: (m) => logs.push(`I ${m}`), warn: (m) => logs.push(`W ${m}`), error: (m) => logs.push(`E ${m}`) } });
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved;
    }
    expect(r.runStatus).toBe('OK');
    expect(r.hook).toMatchObject({ ran: true, ok: true, exitCode: 0 });
    const env = Object.fromEntries((await readFile(envFile, 'utf8')).split('\n').filter((l) => l.includes('=') && !l.startsWith('\t')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(env.DP_GENERATION_ID).toBe(r.generation.id);
    expect(env.DP_GENERATION_DATE).toBe(r.generation.protectionTime);
    expect(env.DP_GENERATION_STATUS).toBe('VALID');
    expect(env.DP_RUN_STATUS).toBe('OK');
    expect(env.DP_REPOSITORY).toBe(f.repoDir);
    const partsText = (await readFile(envFile, 'utf8'));
    for (const p of r.generation.parts) expect(partsText).toContain(`${p.server}\t${p.tag}\tVALID\t${p.snapshot}`);
    expect(partsText).not.toContain('topsecret-pw');
    expect(partsText).not.toMatch(/^DATABASE_URL=/m);
    expect(logs).toContain(`I [post-backup] copying ${r.generation.id}`);
    expect(logs).toContain('W [post-backup] a warning');
    // The latest reference names this generation.
    expect(JSON.parse(await readFile(path.join(f.repoDir, 'latest'), 'utf8')).generation).toBe(r.generation.id);
  });

  it('a failing action gives POSTOPS_ERROR, recorded in the repository too', async () => {
    const hook = await script('fail.sh', 'echo "tape robot offline"\nexit 3');
    const r = await runGeneration({ ...base(), postBackup: { script: hook } });
    expect(r.runStatus).toBe('POSTOPS_ERROR');
    expect(r.hook).toMatchObject({ ran: true, ok: false, exitCode: 3 });
    expect(r.generation.status).toBe('VALID');
    const stored = (await readGenerations(f.repo)).find((g) => g.record.id === r.generation.id)!;
    expect(stored.record.runStatus).toBe('POSTOPS_ERROR');
    expect(stored.record.messages.join(' ')).toContain('exit code 3');
    expect(stored.recordSnapshots.filter((s) => s.meta?.state === 'final')).toHaveLength(1);
  });

  it('a hanging action is killed at the timeout (POSTOPS_ERROR); a missing or non-executable one is not run', async () => {
    // Far longer than the run plus the timeout, even on a busy machine: only the kill ends it in time.
    const slow = await script('slow.sh', 'sleep 600');
    const started = Date.now();
    const r = await runGeneration({ ...base(), postBackup: { script: slow, timeoutMs: 500 } });
    expect(Date.now() - started).toBeLessThan(90_000);
    expect(r.runStatus).toBe('POSTOPS_ERROR');
    expect(r.hook?.reason).toMatch(/timed out/);

    const noexec = await script('noexec.sh', 'exit 1', 0o644);
    const r2 = await runGeneration({ ...base(), postBackup: { script: noexec } });
    expect(r2.runStatus).toBe('OK');
    expect(r2.hook).toMatchObject({ ran: false });
    const r3 = await runGeneration({ ...base(), postBackup: { script: path.join(dir, 'absent.sh') } });
    expect(r3.runStatus).toBe('OK');
    expect(r3.hook).toMatchObject({ ran: false });
  });

  it('does not run after a failed run', async () => {
    const marker = path.join(dir, 'ran-after-failure');
    const hook = await script('mark.sh', `touch ${marker}`);
    const host = Object.create(f.host) as typeof f.host;
    host.databases = async () => [{ server: 'bm-master', tag: 'bm/pgsql', connection: { ...f.sb.db, user: 'dp_nobody' } }];
    const r = await runGeneration({ ...base(), host, postBackup: { script: hook } });
    expect(r.runStatus).toBe('ERROR');
    expect(r.hook).toBeNull();
    await expect(readFile(marker)).rejects.toThrow();
  });
});
