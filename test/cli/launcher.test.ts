import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, test } from 'vitest';

/** The `bm-dataprotect` command as package.json installs it. */
const BIN = fileURLToPath(new URL('../../bin/bm-dataprotect', import.meta.url));
/** A module that the command's process loads first (NODE_OPTIONS): it says what malloc setting it started with. */
const REPORT = `--import=data:text/javascript,process.stderr.write('arenas='+process.env.MALLOC_ARENA_MAX+'\\n')`;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dp-bin-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const base = { ...process.env };
  delete base.MALLOC_ARENA_MAX;
  return spawnSync(bin, args, { encoding: 'utf8', env: { ...base, NODE_OPTIONS: REPORT, ...env } });
}

test('runs the command line with two malloc arenas, through the symlink npm installs too', () => {
  const link = join(dir, 'bm-dataprotect');
  symlinkSync(BIN, link);
  const r = run(link, ['repo', 'init', '--repo', join(dir, 'repo')]);
  expect(r.status, r.stderr).toBe(0);
  expect(r.stderr).toContain('arenas=2\n');
  expect(r.stdout).toMatch(/created repository/);
  expect(existsSync(join(dir, 'repo', 'config'))).toBe(true);
});

test("an administrator's own MALLOC_ARENA_MAX is kept, and the command's exit code and arguments pass through", () => {
  const r = run(BIN, ['repo', 'init', '--repo', join(dir, 'missing', 'x'), '--no-such-option'], { MALLOC_ARENA_MAX: '4' });
  expect(r.stderr).toContain('arenas=4\n');
  expect(r.stderr).toMatch(/unknown option '--no-such-option'/);
  expect(r.status).not.toBe(0);
});
