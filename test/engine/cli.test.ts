import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { jsonLines, runCli } from './cli-helpers.js';
import { bytesOf, manifest, tempDir } from './helpers.js';

let dir: { path: string; cleanup: () => Promise<void> };
let repoDir: string;
let src: string;
beforeEach(async () => {
  dir = await tempDir('dp-cli-');
  repoDir = join(dir.path, 'repo');
  src = join(dir.path, 'spool');
  await mkdir(join(src, 'alice/Maildir/cur'), { recursive: true });
  for (let i = 0; i < 5; i++) await writeFile(join(src, 'alice/Maildir/cur', `m${i}:2,`), bytesOf(i + 1, 4000, true));
});
afterEach(async () => {
  await dir.cleanup();
});

describe('bm-dataprotect command line', () => {
  test('init, backup, snapshots, diff and restore work together, with JSON output', async () => {
    expect((await runCli(['repo', 'init', '--repo', repoDir])).code).toBe(0);
    const b1 = await runCli(['backup', '--repo', repoDir, '--tag', 'mail/imap', '--server', 'mail1', src]);
    expect(b1.code).toBe(0);
    expect(b1.stdout).toMatch(/files: 5 new, 0 changed, 0 unchanged, 0 renamed/);
    expect(b1.stdout).toMatch(/added to the repository: .* \(after dedup and compression\)/);
    await writeFile(join(src, 'alice/Maildir/cur/new:2,'), 'new mail');
    const b2 = await runCli(['backup', '--repo', repoDir, '--tag', 'mail/imap', '--server', 'mail1', src, '--json']);
    expect(b2.code).toBe(0);
    const lines = jsonLines(b2.stdout);
    const summary = lines.at(-1)!;
    expect(summary).toMatchObject({ type: 'summary', filesNew: 1, filesUnmodified: 5, server: 'mail1', tag: 'mail/imap' });

    const list = JSON.parse((await runCli(['snapshots', '--repo', repoDir, '--json'])).stdout) as { id: string }[];
    expect(list.length).toBe(2);
    const diff = await runCli(['diff', '--repo', repoDir, list[0].id.slice(0, 8), list[1].id.slice(0, 8)]);
    expect(diff.stdout).toContain(`+    ${src}/alice/Maildir/cur/new:2,`);
    expect(diff.stdout).toMatch(/1 added, 0 removed, 0 modified/);

    const target = join(dir.path, 'out');
    const r = await runCli(['restore', 'latest', '--repo', repoDir, '--tag', 'mail/imap', '--target', target, '--include', join(src, 'alice')]);
    expect(r.code).toBe(0);
    expect(await manifest(join(target, src))).toEqual(await manifest(src));
  });

  test('exit codes tell usage errors, a missing repository, other failures and success apart (damage: see damage.test.ts)', async () => {
    const usage = await runCli(['backup', '--repo', repoDir, src]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/required option '--tag <tag>'/);
    const noRepo = await runCli(['snapshots', '--repo', join(dir.path, 'nowhere')]);
    expect(noRepo.code).toBe(10);
    expect(noRepo.stderr).toMatch(/no repository at .*nowhere.*repo init/);
    const noTarget = await runCli(['restore', 'latest', '--repo', repoDir]);
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr).toMatch(/missing --target/);
    const upward = await runCli(['restore', 'latest', '--repo', repoDir, '--target', join(dir.path, 'x'), '--include', '..']);
    expect(upward.code).toBe(2);
    expect(upward.stderr).toMatch(/--include \.\.: give a path inside the snapshot, without '\.\.'/);
    const badPercent = await runCli(['check', '--repo', repoDir, '--read-data-subset', '250']);
    expect(badPercent.code).toBe(2);
    expect(badPercent.stderr).toMatch(/percentage in \(0, 100\]/);
    await runCli(['repo', 'init', '--repo', repoDir]);
    const again = await runCli(['repo', 'init', '--repo', repoDir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists/);
    const unknownSnap = await runCli(['restore', 'deadbeef', '--repo', repoDir, '--target', join(dir.path, 'x'), '--json']);
    expect(unknownSnap.code).toBe(1);
    expect(jsonLines(unknownSnap.stdout).at(-1)).toMatchObject({ type: 'fatal', exitCode: 1 });
    const ok = await runCli(['check', '--repo', repoDir]);
    expect(ok.code).toBe(0);
  });

  test('a failing --stdin-from command saves no snapshot and says why', async () => {
    await runCli(['repo', 'init', '--repo', repoDir]);
    const r = await runCli(['backup', '--repo', repoDir, '--tag', 'bm/pgsql', '--stdin-from', 'echo partial; echo "pg_dump: error: connection refused" >&2; exit 1', '--name', 'dump']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/exited with status 1: pg_dump: error: connection refused; no snapshot was saved/);
    expect(JSON.parse((await runCli(['snapshots', '--repo', repoDir, '--json'])).stdout)).toEqual([]);
  });
});
