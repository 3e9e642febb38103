/**
 * Writes the golden generation of generation format 1 into test/fixtures/golden-generation-v1 (run once, committed):
 *   node dist/test/global-restore/golden-maker.js
 * A whole generation of a tiny reference host (database part with entity exports, mail, archive, file hosting,
 * configuration) and what a global restore of it must give back. Never regenerate it for a later format: its
 * point is that later versions keep restoring it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { runGeneration } from '../../server/dataprotect/generation/run.js';
import { parseDatabaseUrl, withDatabase } from '../../server/pg/settings.js';
import { dropDatabase } from '../../server/pg/databases.js';
import { ReferenceHost } from '../../server/host/reference/host.js';
import { SCHEMA_VERSION } from '../../server/host/reference/schema.js';
import { seedReference } from '../../server/host/reference/seed.js';
import { PG_URL } from '../host/helpers.js';
import { recordFiles, recordTables } from './helpers.js';

const out = resolve(process.argv[2] ?? 'test/fixtures/golden-generation-v1');

async function main(): Promise<void> {
  const db = withDatabase(parseDatabaseUrl(PG_URL), `dp_golden_${randomBytes(3).toString('hex')}`);
  const root = await mkdtemp(join(tmpdir(), 'dp-golden-host-'));
  await rm(out, { recursive: true, force: true });
  try {
    await seedReference({ connection: db, root, users: 2, seed: 7, messagesPerUser: 3, eventsPerUser: 2, contactsPerUser: 2, todosPerUser: 1 });
    const host = new ReferenceHost(root, db);
    const repo = await Repository.init(new LocalStorage(join(out, 'repo')));
    const r = await runGeneration({
      repo, host, trigger: 'cli', productVersion: SCHEMA_VERSION, time: new Date('2026-01-05T01:30:00Z'),
      backupEmails: true, backupArchivedEmails: true, skippedTags: [],
    });
    await repo.close();
    if (r.generation.status !== 'VALID') throw new Error(`the golden generation is ${r.generation.status}`);
    const expected = { generation: r.generation.id, productVersion: SCHEMA_VERSION, parts: r.generation.parts.map((p) => `${p.server} ${p.tag}`), tables: await recordTables(db), files: await recordFiles(host.layout) };
    await writeFile(join(out, 'expected.json'), JSON.stringify(expected, null, 1) + '\n');
    console.log(`golden generation ${r.generation.id} written to ${out}`);
  } finally {
    await dropDatabase(db, db.database).catch(() => {});
    await rm(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
