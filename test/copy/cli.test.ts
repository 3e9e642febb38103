import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPartSnapshot, readGenerations } from '../../server/dataprotect/generation/format.js';
import { runGeneration } from '../../server/dataprotect/generation/run.js';
import { Repository, restore } from '../../server/engine/index.js';
import { hostLayout } from '../../server/host/reference/layout.js';
import { openStorage } from '../../server/storage/index.js';
import { ALL_ON, seededHost, type BackupFixture } from '../backup/helpers.js';
import { jsonLines, runCli, startCli } from '../engine/cli-helpers.js';
import { manifest } from '../engine/helpers.js';
import { startS3, type TestS3 } from '../storage/s3-server.js';

// `repo copy`: generations of the reference host copied from a local repository to S3 (killed with -9 part-way and
// resumed), then between plain and encrypted repositories. Every copied generation restores exactly as the source.

let f: BackupFixture;
let s3: TestS3;
let work: string;
let pwFile: string;
/** While set, uploads of packs past the first `allowed` wait here (the test kills the copy meanwhile). */
let hold: { allowed: number; seen: number; reached: () => void; released: Promise<void> } | null = null;
let generations: string[] = [];
const PASSWORD = 'copy test password';

beforeAll(async () => {
  f = await seededHost('copy', 3);
  s3 = await startS3(undefined, {
    beforePut: async (key) => {
      if (!hold || !key.includes('/data/')) return;
      if (++hold.seen <= hold.allowed) return;
      hold.reached();
      await hold.released;
      throw new Error('upload dropped by the test');
    },
  });
  Object.assign(process.env, s3.env);
  work = await mkdtemp(path.join(tmpdir(), 'dp-copy-'));
  pwFile = path.join(work, 'password');
  await writeFile(pwFile, PASSWORD + '\n');
  await chmod(pwFile, 0o600);
  // Two generations, with something new in between.
  const r1 = await runGeneration({ repo: f.repo, host: f.host, trigger: 'cli', productVersion: 'test', ...ALL_ON });
  await writeFile(path.join(hostLayout(f.sb.root).filehosting, 'added-between.txt'), 'a file of the second generation only\n');
  const r2 = await runGeneration({ repo: f.repo, host: f.host, trigger: 'cli', productVersion: 'test', ...ALL_ON });
  expect([r1.runStatus, r2.runStatus]).toEqual(['OK', 'OK']);
  generations = [r1.generation.id, r2.generation.id];
}, 240_000);

afterAll(async () => {
  await f?.cleanup();
  await s3?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const open = (location: string, password?: string) => Repository.open(openStorage(location), { password });

/** Every part of every given generation restores from `copy` exactly as from the source; records and `latest` agree. */
async function expectSameGenerations(copyLocation: string, ids: string[], password?: string): Promise<void> {
  const copy = await open(copyLocation, password);
  try {
    const theirs = await readGenerations(copy);
    const ours = await readGenerations(f.repo);
    for (const id of ids) {
      const a = ours.find((g) => g.record.id === id)!;
      const b = theirs.find((g) => g.record.id === id);
      expect(b, `generation ${id} in the copy`).toBeDefined();
      expect(b!.interrupted).toBe(false);
      const strip = (r: typeof a.record) => ({ ...r, parts: r.parts.map(({ snapshot: _s, ...p }) => p), repositoryFormat: 0 });
      expect(strip(b!.record)).toEqual(strip(a.record));
      for (const p of a.record.parts) {
        const src = await findPartSnapshot(f.repo, id, p.server, p.tag);
        const dst = await findPartSnapshot(copy, id, p.server, p.tag);
        expect(dst.summary).toEqual(src.summary);
        const [ta, tb] = [path.join(work, `a-${src.id}`), path.join(work, `b-${dst.id}`)];
        await restore(f.repo, src, { target: ta });
        await restore(copy, dst, { target: tb });
        const [ma, mb] = [await manifest(ta), await manifest(tb)];
        expect(ma.length).toBeGreaterThan(0);
        expect(mb, `${id} ${p.server} ${p.tag}`).toEqual(ma);
        await rm(ta, { recursive: true, force: true });
        await rm(tb, { recursive: true, force: true });
      }
    }
    const latest = JSON.parse((await copy.readReference('latest'))!.toString()) as { generation: string };
    expect(latest.generation).toBe(ids.at(-1));
  } finally {
    await copy.close();
  }
}

async function objectCount(location: string): Promise<number> {
  let n = 0;
  const st = openStorage(location);
  for (const type of ['data', 'index', 'snapshot'] as const) for await (const _ of st.list(type)) n++;
  return n;
}

function summaryOf(stdout: string) {
  return jsonLines(stdout).find((l) => l.type === 'summary') as {
    generations: { id: string; outcome: string }[]; blobsNew: number; bytesAdded: number; reencoded: boolean; created: boolean; durationMs: number;
    verified: { snapshots: number; blobs: number; trees: number };
  };
}

describe('repo copy', () => {
  let s3Location: string;

  it('copies every generation from a local repository to S3, killed with -9 part-way and resumed by running it again', async () => {
    s3Location = s3.location();
    let reached!: () => void;
    const atHold = new Promise<void>((r) => (reached = r));
    let release!: () => void;
    hold = { allowed: 5, seen: 0, reached, released: new Promise<void>((r) => (release = r)) };
    const child = startCli(['repo', 'copy', '--from', f.repoDir, '--to', s3Location, '--json'], { env: s3.env });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, signal) => r(signal)));
    await atHold;
    // Five packs went up and the sixth is on its way: the copy dies here.
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    hold = null;
    release();
    expect(jsonLines(out).some((l) => l.type === 'progress')).toBe(true);
    expect(jsonLines(out).some((l) => l.type === 'summary')).toBe(false);

    // What the killed copy left: a readable repository holding no complete generation.
    const left = await open(s3Location);
    const packsLeft: string[] = [];
    for await (const p of openStorage(s3Location).list('data')) packsLeft.push(p.name);
    // At most two packs are uploaded at once: at least four of the five finished.
    expect(packsLeft.length).toBeGreaterThanOrEqual(4);
    expect(packsLeft.length).toBeLessThanOrEqual(5);
    expect((await readGenerations(left)).filter((g) => !g.interrupted)).toEqual([]);
    await left.close();

    const started = Date.now();
    const r = await runCli(['repo', 'copy', '--from', f.repoDir, '--to', s3Location, '--json'], { env: s3.env });
    expect(r.code, r.stderr).toBe(0);
    const s = summaryOf(r.stdout);
    expect(s.generations.map((g) => [g.id, g.outcome])).toEqual(generations.map((id) => [id, 'copied']));
    expect(s.reencoded).toBe(false);
    expect(s.verified.blobs).toBeGreaterThan(10);
    // The packs of the killed copy were kept and reused, not written again.
    const after: string[] = [];
    for await (const p of openStorage(s3Location).list('data')) after.push(p.name);
    expect(after).toEqual(expect.arrayContaining(packsLeft));
    let total = 0;
    for await (const p of openStorage(s3Location).list('data')) total += p.size;
    expect(s.bytesAdded).toBeLessThan(total);
    console.log(`copy local -> S3 (resumed): ${generations.length} generations, ${s.bytesAdded} bytes written by the resumed run of ${total} bytes of packs, ${Date.now() - started} ms`);

    await expectSameGenerations(s3Location, generations);
  }, 240_000);

  it('a second copy transfers nothing new', async () => {
    const before = await objectCount(s3Location);
    const r = await runCli(['repo', 'copy', '--from', f.repoDir, '--to', s3Location, '--json'], { env: s3.env });
    expect(r.code, r.stderr).toBe(0);
    const s = summaryOf(r.stdout);
    expect(s.generations.map((g) => g.outcome)).toEqual(['present', 'present']);
    expect([s.blobsNew, s.bytesAdded]).toEqual([0, 0]);
    expect(await objectCount(s3Location)).toBe(before);
    console.log(`copy local -> S3 again: ${s.bytesAdded} bytes written, ${s.durationMs} ms`);
  }, 120_000);

  it('a fresh copy of one generation to S3 (timed)', async () => {
    const loc = s3.location();
    const r = await runCli(['repo', 'copy', '--from', f.repoDir, '--to', loc, generations[1], '--json'], { env: s3.env });
    expect(r.code, r.stderr).toBe(0);
    const s = summaryOf(r.stdout);
    expect(s.created).toBe(true);
    expect(s.generations).toEqual([{ id: generations[1], outcome: 'copied', snapshots: expect.any(Number) }]);
    const gens = await readGenerations(await open(loc));
    expect(gens.map((g) => g.record.id)).toEqual([generations[1]]);
    console.log(`copy of one generation local -> S3: ${s.bytesAdded} bytes in ${s.durationMs} ms`);
  }, 120_000);

  it('plain to encrypted (created with --to-password-file), then encrypted back to plain: both restore exactly', async () => {
    const encrypted = path.join(work, 'encrypted');
    const r1 = await runCli(['repo', 'copy', '--from', f.repoDir, '--to', encrypted, '--to-password-file', pwFile, '--json']);
    expect(r1.code, r1.stderr).toBe(0);
    const s1 = summaryOf(r1.stdout);
    expect([s1.created, s1.reencoded]).toEqual([true, true]);
    expect([...(await readFile(path.join(encrypted, 'config'))).subarray(0, 2)]).toEqual([2, 2]);
    // Nothing of the content in clear: the file added between the generations.
    for (const e of await readdir(encrypted, { recursive: true, withFileTypes: true })) {
      if (e.isFile()) expect((await readFile(path.join(e.parentPath, e.name))).includes('a file of the second generation only')).toBe(false);
    }
    await expectSameGenerations(encrypted, generations, PASSWORD);

    // Again: nothing new, although every blob had to be read to find its id in the destination.
    const again = await runCli(['repo', 'copy', '--from', f.repoDir, '--to', encrypted, '--to-password-file', pwFile, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(summaryOf(again.stdout).bytesAdded).toBe(0);

    const plain = path.join(work, 'plain-again');
    const r2 = await runCli(['repo', 'copy', '--from', encrypted, '--from-password-file', pwFile, '--to', plain, 'latest', '--json']);
    expect(r2.code, r2.stderr).toBe(0);
    const s2 = summaryOf(r2.stdout);
    expect([s2.created, s2.reencoded]).toEqual([true, true]);
    expect([...(await readFile(path.join(plain, 'config'))).subarray(0, 1)]).toEqual([1]);
    await expectSameGenerations(plain, [generations[1]]);

    // Without the source's password: exit code 13, nothing copied.
    const denied = await runCli(['repo', 'copy', '--from', encrypted, '--to', path.join(work, 'nowhere'), '--json'], { env: { DP_REPOSITORY_PASSWORD: '', DP_REPOSITORY_PASSWORD_FILE: '' } });
    expect(denied.code).toBe(13);
  }, 240_000);

  it('refuses what cannot be copied, with the reason', async () => {
    const unknown = await runCli(['repo', 'copy', '--from', f.repoDir, '--to', path.join(work, 'other'), '20990101-000000-abcd']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no generation 20990101-000000-abcd in the source repository/);
    await expect(readdir(path.join(work, 'other'))).rejects.toThrow(/ENOENT/);
    const same = await runCli(['repo', 'copy', '--from', f.repoDir, '--to', f.repoDir]);
    expect(same.code).toBe(2);
    const missing = await runCli(['repo', 'copy', '--to', f.repoDir]);
    expect(missing.code).toBe(2);
  }, 60_000);
});
