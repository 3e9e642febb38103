import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, link, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGenerations } from '../../server/dataprotect/generation/format.js';
import { Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { hostLayout } from '../../server/host/reference/layout.js';
import { seededHost, type BackupFixture } from '../backup/helpers.js';
import { CLI, jsonLines, runCli } from '../engine/cli-helpers.js';

// `dump`: a generation as a tar stream that plain tar unpacks into what a restore writes, and as a folder that
// hard-links what did not change since the previous export.

let f: BackupFixture;
let env: NodeJS.ProcessEnv;
let work: string;
let files: string;
const deep = `${'a-rather-long-folder-name-'.repeat(3)}x/${'another-long-folder-name-'.repeat(3)}y/${'z'.repeat(120)}.txt`;

beforeAll(async () => {
  f = await seededHost('dump', 2);
  const d = f.sb.db;
  env = { DATABASE_URL: `postgres://${d.user}@${d.host}:${d.port}/${d.database}` };
  work = await mkdtemp(path.join(tmpdir(), 'dp-dump-'));
  // What tar must carry through: long names and link targets, modes, nanosecond mtimes, symlinks, hard links,
  // an empty file, a name that is not ASCII, a file of several blobs.
  files = path.join(hostLayout(f.sb.root).filehosting, 'tape');
  await mkdir(path.dirname(path.join(files, deep)), { recursive: true });
  await writeFile(path.join(files, deep), 'deep down\n');
  await writeFile(path.join(files, 'private.txt'), 'secret\n');
  await chmod(path.join(files, 'private.txt'), 0o640);
  await utimes(path.join(files, 'private.txt'), 1_700_000_000.123456, 1_700_000_000.123456);
  await writeFile(path.join(files, 'été.txt'), 'accents\n');
  await writeFile(path.join(files, 'empty'), '');
  await writeFile(path.join(files, 'big.bin'), Buffer.alloc(5 * 1024 * 1024, 7).map((_, i) => (i * 31) % 251));
  await writeFile(path.join(files, 'linked-a'), 'two names\n');
  await link(path.join(files, 'linked-a'), path.join(files, 'linked-b'));
  await symlink(deep, path.join(files, 'to-deep'));
  await chmod(path.join(files, 'a-rather-long-folder-name-a-rather-long-folder-name-a-rather-long-folder-name-x'), 0o750);
  const r = await runCli(['generation', 'backup', '--repo', f.repoDir, '--host-root', f.sb.root, '--no-post-script', '--json'], { env });
  expect(r.code, r.stderr).toBe(0);
});
afterAll(async () => {
  await f?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

function sh(script: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', script], { env: { ...process.env, ...env, CLI }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function latestParts() {
  const repo = await Repository.open(new LocalStorage(f.repoDir));
  try {
    const g = (await readGenerations(repo))[0];
    return { id: g.record.id, parts: g.partSnapshots.map((s) => ({ server: s.server, tag: s.tag, snapshot: s.id })) };
  } finally {
    await repo.close();
  }
}

interface Seen {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtimeUs: bigint;
  size: number;
  sha?: string;
  target?: string;
  /** Other names of the same inode, relative. */
  names?: string;
}

/** Everything below `root`, by relative path: type, metadata, content digest, symlink target, hard link groups. */
function describeTree(root: string): Map<string, Seen> {
  const out = new Map<string, Seen>();
  const byIno = new Map<bigint, string[]>();
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p, { bigint: true });
      const seen: Seen = { type: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other', mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtimeUs: st.mtimeNs / 1000n, size: st.isFile() ? Number(st.size) : 0 };
      if (st.isFile()) {
        seen.sha = createHash('sha256').update(readFileSync(p)).digest('hex');
        byIno.set(st.ino, [...(byIno.get(st.ino) ?? []), r]);
      }
      if (st.isSymbolicLink()) {
        seen.target = readlinkSync(p);
        delete (seen as Partial<Seen>).mode; // a symlink's mode is not kept anywhere
      }
      out.set(r, seen);
      if (st.isDirectory()) walk(p, r);
    }
  };
  walk(root, '');
  for (const names of byIno.values()) for (const n of names) out.get(n)!.names = names.join(' ');
  return out;
}

describe('bm-dataprotect dump', () => {
  it('dump latest | tar -t lists every part and file; tar -x gives what a restore of each part gives, byte for byte with modes and mtimes', async () => {
    const { id, parts } = await latestParts();
    expect(parts.map((p) => `${p.server} ${p.tag}`)).toContain('bm-master filehosting/data');

    const listing = sh(`node "$CLI" dump latest --repo ${f.repoDir} | tar -t`);
    expect(listing.code, listing.stderr).toBe(0);
    const names = listing.stdout.split('\n');
    expect(names).toContain(`bm-master/filehosting/data/filehosting/tape/${deep}`);
    expect(names).toContain('bm-master/filehosting/data/filehosting/tape/été.txt');
    expect(names).toContain('bm-master/filehosting/data/filehosting/tape/linked-b');
    expect(names.some((n) => n.startsWith('bm-mail/mail/imap/spool/'))).toBe(true);
    expect(names.some((n) => n.startsWith('bm-master/bm/pgsql/'))).toBe(true);

    const extracted = path.join(work, 'extracted');
    await mkdir(extracted);
    const x = sh(`node "$CLI" dump ${id} --repo ${f.repoDir} | tar -x -p --numeric-owner -C ${extracted}`);
    expect(x.code, x.stderr).toBe(0);

    const restored = path.join(work, 'restored');
    for (const p of parts) {
      const r = await runCli(['restore', p.snapshot, '--repo', f.repoDir, '--target', path.join(restored, p.server, p.tag), '--json']);
      expect(r.code, r.stderr).toBe(0);
    }
    for (const p of parts) {
      const a = describeTree(path.join(extracted, p.server, p.tag));
      const b = describeTree(path.join(restored, p.server, p.tag));
      expect(a.size).toBeGreaterThan(0);
      expect(a).toEqual(b);
    }
    const tape = describeTree(path.join(extracted, 'bm-master/filehosting/data/filehosting/tape'));
    expect(tape.get('private.txt')).toMatchObject({ mode: 0o640, mtimeUs: 1_700_000_000_123_456n });
    expect(tape.get('linked-a')!.names).toBe('linked-a linked-b');
    expect(tape.get('to-deep')!.target).toBe(deep);
    expect(tape.get('big.bin')!.size).toBe(5 * 1024 * 1024);
  });

  it('--part and --include pick a part and a path of it; a wrong part, path or generation is a clear error', async () => {
    const one = sh(`node "$CLI" dump latest --repo ${f.repoDir} --part bm-master:filehosting/data --include /filehosting/tape/private.txt --include filehosting/tape/to-deep | tar -tv`);
    expect(one.code, one.stderr).toBe(0);
    const lines = one.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/).slice(5).join(' '))).toEqual([
      'bm-master/', 'bm-master/filehosting/', 'bm-master/filehosting/data/', 'bm-master/filehosting/data/filehosting/',
      'bm-master/filehosting/data/filehosting/tape/', 'bm-master/filehosting/data/filehosting/tape/private.txt',
      `bm-master/filehosting/data/filehosting/tape/to-deep -> ${deep}`,
    ]);
    expect(lines[5]).toMatch(/^-rw-r-----/);

    const badPart = await runCli(['dump', 'latest', '--repo', f.repoDir, '--part', 'bm-master:mail/imap']);
    expect(badPart.code).toBe(1);
    expect(badPart.stderr).toMatch(/has no part bm-master:mail\/imap .*parts: /);
    expect(badPart.stderr).not.toMatch(/\n\s+at /);
    const badPath = await runCli(['dump', 'latest', '--repo', f.repoDir, '--include', '/nowhere']);
    expect(badPath.stderr).toMatch(/not in any exported part: \/nowhere/);
    expect(badPath.stdout).toBe('');
    const badGen = await runCli(['dump', '20990101-000000-abcd', '--repo', f.repoDir]);
    expect(badGen.code).toBe(2);
    expect(badGen.stderr).toMatch(/no generation 20990101-000000-abcd/);
    const badRef = await runCli(['dump', 'latest', '--repo', f.repoDir, '--part', 'nocolon']);
    expect(badRef.code).toBe(2);
  });

  it('--output writes DIR/<generation>, and the next export hard-links the files that did not change', async () => {
    const out = path.join(work, 'tape');
    const first = await runCli(['dump', 'latest', '--repo', f.repoDir, '--output', out, '--json']);
    expect(first.code, first.stderr).toBe(0);
    const s1 = jsonLines(first.stdout).find((l) => l.type === 'summary')!;
    expect(s1).toMatchObject({ reused: 0, previous: null });
    const g1 = String(s1.generation);
    expect(readlinkSync(path.join(out, 'last'))).toBe(g1);
    // The folder is what tar -x of the same generation gave.
    expect(describeTree(path.join(out, g1))).toEqual(describeTree(path.join(work, 'extracted')));
    const again = await runCli(['dump', g1, '--repo', f.repoDir, '--output', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists already/);

    await writeFile(path.join(files, 'private.txt'), 'changed secret\n');
    const r = await runCli(['generation', 'backup', '--repo', f.repoDir, '--host-root', f.sb.root, '--no-post-script', '--no-retention', '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    const second = await runCli(['dump', 'latest', '--repo', f.repoDir, '--output', out, '--json']);
    expect(second.code, second.stderr).toBe(0);
    const s2 = jsonLines(second.stdout).find((l) => l.type === 'summary')!;
    const g2 = String(s2.generation);
    expect(g2).not.toBe(g1);
    expect(s2.previous).toBe(g1);
    expect(Number(s2.reused)).toBeGreaterThan(Number(s2.files) / 2);
    expect(readlinkSync(path.join(out, 'last'))).toBe(g2);
    const tape = (g: string, name: string) => lstatSync(path.join(out, g, 'bm-master/filehosting/data/filehosting/tape', name));
    expect(tape(g2, 'big.bin').ino).toBe(tape(g1, 'big.bin').ino);
    expect(tape(g2, deep).ino).toBe(tape(g1, deep).ino);
    expect(tape(g2, 'private.txt').ino).not.toBe(tape(g1, 'private.txt').ino);
    expect(readFileSync(path.join(out, g2, 'bm-master/filehosting/data/filehosting/tape/private.txt'), 'utf8')).toBe('changed secret\n');
    expect(readFileSync(path.join(out, g1, 'bm-master/filehosting/data/filehosting/tape/private.txt'), 'utf8')).toBe('secret\n');
  });
});
