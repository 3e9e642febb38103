import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const dist = (path: string) => JSON.stringify(fileURLToPath(new URL(`../../dist/server/${path}`, import.meta.url)));

/**
 * The young generation's size (MiB) in a fresh Node process that ran `setup`, started a codec worker and had it
 * compress a blob (its start is what sets V8's growth back), then allocated objects of which some survive many
 * scavenges (as a restore's plan does).
 */
function newSpaceAfterWork(setup: string): number {
  const script = `
    const { getHeapSpaceStatistics } = await import('node:v8');
    ${setup}
    const { CodecPool } = await import(${dist('engine/codec-pool.js')});
    const pool = new CodecPool(3, new Int32Array(256), null, { workers: 1, nice: 0 });
    await pool.compressPacked(Buffer.alloc(4096, 1), [4096]);
    let held = [];
    for (let i = 0; i < 2e6; i++) { held.push({ i, s: 'x' + i }); if (held.length > 20000) held = []; }
    await pool.close();
    process.stdout.write(String(getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 2 ** 20));
  `;
  // A file, not -e: the worker would inherit --input-type.
  const dir = mkdtempSync(join(tmpdir(), 'dp-young-'));
  try {
    writeFileSync(join(dir, 'run.mjs'), script);
    const r = spawnSync(process.execPath, [join(dir, 'run.mjs')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    return Number(r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

it('the young generation keeps its starting size, also once a codec worker started, where V8 would grow it', () => {
  // Left alone, V8 grows it (what the setting is for).
  expect(newSpaceAfterWork('')).toBeGreaterThan(4);
  expect(newSpaceAfterWork(`(await import(${dist('cli/memory.js')})).keepHeapSmall(['--semi-space-growth-factor=1']);`)).toBeLessThanOrEqual(2);
});

it('the command line keeps it small for the commands that run long over a repository, and only for them', () => {
  const cli = (word: string, small: boolean) =>
    `if (((await import(${dist('cli/memory.js')})).heapFlagsFor(${JSON.stringify(word)}).length > 0) !== ${small}) throw new Error('wrong decision');`;
  for (const word of ['backup', 'generation', 'restore', 'check']) expect(newSpaceAfterWork(cli(word, true)), word).toBeLessThanOrEqual(2);
  expect(newSpaceAfterWork(cli('snapshots', false))).toBeGreaterThan(4);
  expect(newSpaceAfterWork(cli('toString', false))).toBeGreaterThan(4);
});
