/**
 * A measurement, not a bench case: what the database part of the bench would store with other stream chunk
 * sizes, zstd levels and raw-content zstd dictionaries, before any of it is built into the repository format.
 *
 *   node dist/test/bench/dictionary-measure.js --work /tmp/x [--users 2000] [--reuse]
 *
 * It seeds the database of the bench's database case (same generator, same sizes), backs up three generations
 * as that case does (the first; after 1% of items changed in runs of 16; after 1% of single rows changed by
 * hash, the bench's target), restores each generation's files (the ordered dump, the manifest, the users'
 * records: the bytes the stream chunker saw) and then models each configuration offline: the content cut with
 * the stream chunker's FastCDC at the given sizes, each new chunk compressed alone (with the dictionary, when
 * there is one), plus 88 bytes of metadata per blob (its 46-byte index record and 42-byte pack header entry).
 * "new" is what a generation adds: chunks whose SHA-256 no earlier generation had.
 *
 * Dictionaries tried: none; chunks of the first generation's dump sampled evenly (all of the dump needed before
 * the first chunk is compressed); rows sampled from each table in proportion to its size with
 * `TABLESAMPLE BERNOULLI` inside the database before pg_dump runs (what a streaming backup can do: the
 * dictionary exists before the first byte of the dump). The dictionary's own stored bytes are added to the
 * first generation. `--reuse` skips seeding and backing up, and models the generations of an earlier run.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import binding from 'zstd-napi/binding.js';
import { cutsInto, gearTable } from '../../server/engine/chunker.js';
import { Repository, restore } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { parseDatabaseUrl, pgToolEnv, withDatabase, type ConnectionSettings } from '../../server/pg/settings.js';
import { dropDatabase } from '../../server/pg/databases.js';
import { withClient } from '../../server/pg/client.js';
import { ReferenceHost } from '../../server/host/reference/host.js';
import { seedReference } from '../../server/host/reference/seed.js';
import { backupDatabase } from '../../server/sources/pgsql-backup.js';
import { changeSql } from './database.js';

const { values } = parseArgs({ options: { work: { type: 'string' }, users: { type: 'string', default: '2000' }, reuse: { type: 'boolean', default: false } } });
if (!values.work) throw new Error('--work DIR is needed');
const work = values.work;
const log = (s: string) => process.stderr.write(s + '\n');
const MiB = 1024 * 1024;
const PER_BLOB = 46 + 42;

function psqlCopy(s: ConnectionSettings, sql: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('psql', ['-X', '-q', '-At', '-c', sql], { env: pgToolEnv(s), stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => (err += b));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`psql: ${err.trim()}`))));
  });
}

/** About `bytes` of rows in COPY text form, each table's share in proportion to its size on disk. */
async function sampledRows(s: ConnectionSettings, bytes: number): Promise<Buffer> {
  const sizes = await withClient(s, (c) =>
    c.query<{ t: string; n: string }>(
      `SELECT format('%I.%I', n.nspname, c.relname) AS t, pg_relation_size(c.oid) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND pg_relation_size(c.oid) > 0 ORDER BY 2, 1`,
    ),
  );
  const total = sizes.rows.reduce((a, r) => a + Number(r.n), 0);
  const pct = Math.min(100, (100 * bytes) / total);
  const parts: Buffer[] = [];
  for (const r of sizes.rows) parts.push(await psqlCopy(s, `COPY (SELECT * FROM ${r.t} TABLESAMPLE BERNOULLI (${pct}) REPEATABLE (7)) TO STDOUT`));
  return Buffer.concat(parts);
}

async function filesOf(dir: string): Promise<{ path: string; data: Buffer }[]> {
  const out: { path: string; data: Buffer }[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of (await readdir(d)).sort()) {
      const p = join(d, e);
      if ((await stat(p)).isDirectory()) await walk(p);
      else out.push({ path: relative(dir, p), data: await readFile(p) });
    }
  };
  await walk(dir);
  return out;
}

async function capture(): Promise<void> {
  const base = parseDatabaseUrl(process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  const db = withDatabase(base, `dp_dictionary_${process.pid}`);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    const users = Number(values.users);
    log(`seeding ${users} users ...`);
    await seedReference({ connection: db, root: join(work, 'host'), users, eventsPerUser: 30, contactsPerUser: 25, todosPerUser: 4, files: false });
    const repo = await Repository.init(new LocalStorage(join(work, 'repo')));
    const host = new ReferenceHost(join(work, 'host'), db);
    const gen = async (n: number) => {
      const r = await backupDatabase({ repo, server: 'bm-master', connection: db, entities: host.entityData });
      await restore(repo, r.snapshot, { target: join(work, `gen${n}`) });
      log(`generation ${n}: dump ${r.manifest.dump.bytes} B`);
    };
    await writeFile(join(work, 'rows.dict'), await sampledRows(db, MiB));
    await gen(1);
    await withClient(db, (c) => c.query(changeSql('clustered', 'a')));
    await gen(2);
    await withClient(db, (c) => c.query(changeSql('rows', 'b')));
    await gen(3);
    await repo.close();
  } finally {
    await dropDatabase(base, db.database).catch(() => {});
  }
}

interface Config {
  avg: number;
  level: number;
  dictionary: 'none' | 'dump' | 'rows';
}

async function model(gens: { path: string; data: Buffer }[][], rowsDict: Buffer, c: Config): Promise<number[]> {
  const gear = gearTable(625341585);
  const p = { min: c.avg / 4, avg: c.avg, max: c.avg * 8 };
  const chunks = (data: Buffer): Buffer[] => {
    const cuts: number[] = [];
    cutsInto(gear, data, p, cuts);
    let s = 0;
    return cuts.map((e) => data.subarray(s, (s = e)));
  };
  let dict: Buffer | null = null;
  if (c.dictionary === 'rows') dict = rowsDict;
  if (c.dictionary === 'dump') {
    const dump = chunks(gens[0].find((f) => f.path.startsWith('dump/'))!.data);
    const step = Math.max(1, Math.round(dump.length / (MiB / (c.avg * 1.25))));
    dict = Buffer.concat(dump.filter((_, i) => i % step === 0)).subarray(0, MiB);
  }
  const cctx = new binding.CCtx();
  const cdict = dict ? new binding.CDict(dict, c.level) : null;
  let out = Buffer.allocUnsafe(1 << 20);
  const stored = (b: Buffer): number => {
    const bound = binding.compressBound(b.length);
    if (out.length < bound) out = Buffer.allocUnsafe(bound);
    const n = cdict ? cctx.compressUsingCDict(out, b, cdict) : cctx.compress(out, b, c.level);
    return Math.min(n, b.length);
  };
  const seen = new Set<string>();
  const added: number[] = [];
  for (const files of gens) {
    let bytes = added.length === 0 && dict ? stored(dict) + PER_BLOB : 0;
    for (const f of files) {
      for (const ch of chunks(f.data)) {
        const id = createHash('sha256').update(ch).digest('hex');
        if (seen.has(id)) continue;
        seen.add(id);
        bytes += stored(ch) + PER_BLOB;
      }
    }
    added.push(bytes);
  }
  return added;
}

async function main(): Promise<void> {
  if (!values.reuse) await capture();
  const gens = await Promise.all([1, 2, 3].map((n) => filesOf(join(work, `gen${n}`))));
  const rowsDict = await readFile(join(work, 'rows.dict'));
  log(`row-sampled dictionary: ${rowsDict.length} B`);
  const configs: Config[] = [
    { avg: 8192, level: 3, dictionary: 'none' },
    { avg: 4096, level: 3, dictionary: 'none' },
    { avg: 8192, level: 3, dictionary: 'dump' },
    { avg: 4096, level: 3, dictionary: 'dump' },
    { avg: 4096, level: 9, dictionary: 'dump' },
    { avg: 4096, level: 3, dictionary: 'rows' },
    { avg: 4096, level: 9, dictionary: 'rows' },
    { avg: 4096, level: 12, dictionary: 'rows' },
    { avg: 2048, level: 9, dictionary: 'rows' },
  ];
  console.log('stream chunks (avg) | zstd level | dictionary | generation 1 MiB | after runs of 16 MiB | after single rows MiB');
  for (const c of configs) {
    const [g1, g2, g3] = await model(gens, rowsDict, c);
    console.log(`${c.avg} | ${c.level} | ${c.dictionary} | ${(g1 / MiB).toFixed(2)} | ${(g2 / MiB).toFixed(2)} | ${(g3 / MiB).toFixed(2)}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
