/**
 * Writes a golden repository (run once per format version, committed):
 *   node dist/test/engine/golden-maker.js                                      format 1, test/fixtures/golden-v1
 *   node dist/test/engine/golden-maker.js test/fixtures/golden-v2 PASSWORD     format 2 (encrypted with PASSWORD)
 *   node dist/test/engine/golden-maker.js test/fixtures/golden-v3              format 3 (dictionaries)
 * It writes the format this program writes (a plain repository: 3, since format 1 is only read now).
 * Never regenerate one for a later format: its whole point is that later versions keep reading it.
 */
import { link, mkdir, rename, rm, symlink, utimes, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Archiver, Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { bytesOf, manifest } from './helpers.js';

const out = resolve(process.argv[2] ?? 'test/fixtures/golden-v1');
const password = process.argv[3];
const src = join(tmpdir(), 'dp-golden-src');

async function main(): Promise<void> {
  await rm(out, { recursive: true, force: true });
  await rm(src, { recursive: true, force: true });
  await mkdir(join(src, 'user1/Maildir/cur'), { recursive: true });
  await mkdir(join(src, 'user1/Maildir/.Archive/cur'), { recursive: true });
  await mkdir(join(src, 'empty/nested'), { recursive: true });
  await mkdir(join(src, 'élève'), { recursive: true });
  await writeFile(join(src, 'user1/Maildir/cur/1700000000.M1P1.mx:2,'), bytesOf(1, 4000, true));
  await writeFile(join(src, 'user1/Maildir/cur/1700000001.M2P1.mx:2,S'), bytesOf(2, 9000, true));
  await writeFile(join(src, 'élève/résumé ☃.txt'), 'non-ASCII ✓\n');
  await writeFile(join(src, 'large.txt'), bytesOf(3, 2_500_000, true));
  await writeFile(join(src, 'empty-file'), '');
  await symlink('user1/Maildir', join(src, 'maildir-link'));
  await link(join(src, 'large.txt'), join(src, 'empty/large-hardlink.txt'));
  await chmod(join(src, 'élève'), 0o750);
  const files = ['user1/Maildir/cur/1700000000.M1P1.mx:2,', 'user1/Maildir/cur/1700000001.M2P1.mx:2,S', 'élève/résumé ☃.txt', 'large.txt', 'empty-file'];
  for (const [i, f] of files.entries()) await utimes(join(src, f), 1_700_000_000 + i, 1_700_000_000 + i + 0.25);
  for (const d of ['user1/Maildir/cur', 'user1/Maildir/.Archive/cur', 'user1/Maildir/.Archive', 'user1/Maildir', 'user1', 'empty/nested', 'empty', 'élève']) await utimes(join(src, d), 1_699_999_000, 1_699_999_000);

  const repo = await Repository.init(new LocalStorage(join(out, 'repo')), { password });
  const a = new Archiver(repo, { server: 'mail.golden', tag: 'mail/imap', hostname: 'golden', time: new Date('2026-01-01T01:00:00Z') });
  await a.addTree('/spool', src);
  const s1 = await a.commit();
  const m1 = await manifest(src);

  // Day 2: a flag change (rename), a move, a new message; and a stream part.
  await rename(join(src, 'user1/Maildir/cur/1700000000.M1P1.mx:2,'), join(src, 'user1/Maildir/cur/1700000000.M1P1.mx:2,S'));
  await rename(join(src, 'user1/Maildir/cur/1700000001.M2P1.mx:2,S'), join(src, 'user1/Maildir/.Archive/cur/1700000001.M2P1.mx:2,S'));
  await writeFile(join(src, 'user1/Maildir/cur/1700000100.M3P1.mx:2,'), bytesOf(4, 3000, true));
  await utimes(join(src, 'user1/Maildir/cur/1700000100.M3P1.mx:2,'), 1_700_000_100, 1_700_000_100);
  for (const d of ['user1/Maildir/cur', 'user1/Maildir/.Archive/cur']) await utimes(join(src, d), 1_699_999_500, 1_699_999_500);
  const b = new Archiver(repo, { server: 'mail.golden', tag: 'mail/imap', hostname: 'golden', time: new Date('2026-01-02T01:00:00Z') });
  await b.addTree('/spool', src);
  const s2 = await b.commit();
  const m2 = await manifest(src);

  const c = new Archiver(repo, { server: 'core.golden', tag: 'bm/pgsql', hostname: 'golden', time: new Date('2026-01-02T01:00:00Z') });
  const dump = Buffer.concat([bytesOf(5, 300_000, true), bytesOf(6, 50_000)]);
  // From format 3 on, the dump as the database part stores one: 4 KiB chunks compressed with a dictionary
  // (here a piece of the dump itself); an encrypted repository has none.
  await c.addStream('/pgsql/bj.dump', [dump], { chunker: 'rows', dictionary: async () => dump.subarray(0, 64 * 1024) });
  const s3 = await c.commit();
  // Format 2 seals references too: the fixture holds one.
  const latest = password ? { generation: 'golden', snapshots: [s1.id, s2.id, s3.id] } : undefined;
  if (latest) await repo.writeReference('latest', Buffer.from(JSON.stringify(latest)));
  await repo.close();

  const { createHash } = await import('node:crypto');
  await writeFile(
    join(out, 'expected.json'),
    JSON.stringify({ snapshots: { day1: s1.id, day2: s2.id, dump: s3.id }, ...(latest ? { latest } : {}), day1: m1, day2: m2, dumpSha256: createHash('sha256').update(dump).digest('hex'), dumpSize: dump.length }, null, 1),
  );
  await rm(src, { recursive: true, force: true });
  console.log(`golden repository written to ${out}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
