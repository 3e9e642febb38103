import { spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { expect, it } from 'vitest';
import { entryHeader, paxRecord, paxTime, TarWriter } from '../../server/dataprotect/export/tar.js';

// The tar writer's corners that a backed-up tree rarely reaches: files of 8 GiB and more, huge ids, odd lengths.

it('a pax record counts its own length, also where the count gains a digit', () => {
  for (let n = 1; n < 300; n++) {
    const r = paxRecord('path', 'x'.repeat(n)).toString();
    expect(Number(r.split(' ')[0])).toBe(Buffer.byteLength(r));
  }
  expect(paxTime('1700000000123456789')).toBe('1700000000.123456789');
  expect(paxTime('1700000000000000000')).toBe('1700000000');
  expect(paxTime('1700000000100000000')).toBe('1700000000.1');
});

it('sizes past 8 GiB and ids past ustar go into a pax header that GNU tar reads back', async () => {
  const header = entryHeader({ path: 'huge.img', type: 'file', mode: 0o600, uid: 3_000_000, gid: 5, mtimeNs: '1700000000000000000', size: 9 * 1024 ** 3 });
  expect(header.toString('latin1')).toContain('size=9663676416\n');
  expect(header.toString('latin1')).toContain('uid=3000000\n');
  // A real stream with the same header fields, small enough to write: GNU tar lists the owner from the pax header.
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const tar = new TarWriter(out);
  await tar.add({ path: 'owned', type: 'file', mode: 0o600, uid: 3_000_000, gid: 5, mtimeNs: '1700000000500000000', size: 3 }, PassThrough.from([Buffer.from('abc')]));
  await tar.end();
  const r = spawnSync('tar', ['-tv', '--numeric-owner', '--full-time'], { input: Buffer.concat(chunks), encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/^-rw------- 3000000\/5\s+3 2023-11-14 \d\d:13:20(\.5)?\s+owned$/m);
  // Content shorter than announced is refused rather than written as a corrupt archive.
  await expect(new TarWriter(new PassThrough()).add({ path: 'short', type: 'file', mode: 0o600, uid: 0, gid: 0, mtimeNs: '0', size: 10 }, PassThrough.from([Buffer.from('abc')]))).rejects.toThrow(/3 bytes, 10 were announced/);
});
