import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerServer, type ServerRegistration } from '../../plugin/server.js';
import { readGenerations } from '../../server/dataprotect/generation/format.js';
import { openLocation } from '../../server/dataprotect/generation/repository.js';
import { PasswordError, Repository } from '../../server/engine/index.js';
import { hostLayout } from '../../server/host/reference/layout.js';
import { dropDatabase } from '../../server/pg/databases.js';
import { withClient } from '../../server/pg/client.js';
import { LocalStorage } from '../../server/storage/index.js';
import { TaskRegistry } from '../../server/jobs/task-registry.js';
import { KEYS, PG_BASE, testAuth } from '../http/harness.js';
import { seededHost, type BackupFixture } from './helpers.js';

// The plugin with a repository password (DP_REPOSITORY_PASSWORD_FILE, a 0600 file): the repository its first
// backup creates is encrypted, a generation of the reference host goes into it, and an entity restores from it.

process.env.DP_VALIDATE_RESPONSES = '1';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
let f: BackupFixture;
let work: string;
let repoDir: string;
let app: FastifyInstance;
let reg: ServerRegistration;
const databaseUrl = `${PG_BASE}/dp_test_crypt_${randomBytes(5).toString('hex')}`;

const api = (method: 'GET' | 'POST', url: string, body?: unknown) =>
  app.inject({
    method, url: `/api/dataprotect${url}`,
    headers: { 'x-bm-apikey': KEYS.admin, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { payload: JSON.stringify(body) } : {}),
  });

const sql = <T = Record<string, unknown>>(text: string, params: unknown[] = []) => withClient(f.sb.db, async (c) => (await c.query(text, params)).rows as T[]);

async function filesUnder(root: string): Promise<string[]> {
  return (await readdir(root, { withFileTypes: true, recursive: true })).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

beforeAll(async () => {
  f = await seededHost('crypt');
  work = await mkdtemp(path.join(tmpdir(), 'dp-crypt-backup-'));
  repoDir = path.join(work, 'repository');
  const pwFile = path.join(work, 'repository.password');
  await writeFile(pwFile, PASSWORD + '\n');
  await chmod(pwFile, 0o600);
  process.env.DP_REPOSITORY_PASSWORD_FILE = pwFile;
  delete process.env.DP_REPOSITORY_PASSWORD;
  app = Fastify();
  reg = await registerServer(
    { fastify: app, databaseUrl, auth: testAuth, defaultRepositoryLocation: repoDir, taskFilesDir: path.join(work, 'files'), nodeId: 'node-crypt', log: { info: () => {}, error: () => {} } },
    { installation: { port: f.host, productVersion: 'test-5.1', mailer: null } },
  );
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await reg?.close();
  await dropDatabase(databaseUrl).catch(() => {});
  await f?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the plugin with an encrypted repository', () => {
  let generationId: string;

  it('Backup now writes a VALID generation of the reference host into a repository it creates encrypted', async () => {
    const started = await api('POST', '/backups');
    expect(started.statusCode).toBe(202);
    const done = await reg.container.resolve(TaskRegistry).whenDone(started.json().task.id);
    expect(done?.status, done?.error ?? '').toBe('SUCCEEDED');
    generationId = done!.result!.generationId as string;
    const gens = (await api('GET', '/generations/_detailed')).json() as { id: string; status: string; parts: { status: string }[] }[];
    expect(gens.map((g) => g.id)).toEqual([generationId]);
    expect(gens[0].status).toBe('VALID');
    expect(gens[0].parts.every((p) => p.status === 'VALID')).toBe(true);

    const config = await readFile(path.join(repoDir, 'config'));
    expect([...config.subarray(0, 2)]).toEqual([2, 2]);
    expect((await readdir(path.join(repoDir, 'keys'))).length).toBe(1);
    await expect(Repository.open(new LocalStorage(repoDir))).rejects.toThrow(PasswordError);
    await expect(Repository.open(new LocalStorage(repoDir), { password: 'not it' })).rejects.toThrow(/wrong password/);
    const repo = (await openLocation(repoDir))!;
    expect(repo.encrypted).toBe(true);
    const stored = await readGenerations(repo);
    expect(stored.map((g) => g.record.id)).toEqual([generationId]);
    expect(stored[0].record.repositoryFormat).toBe(2);
    expect(JSON.parse((await repo.readReference('latest'))!.toString()).generation).toBe(generationId);
    await repo.close();

    // The password is in no task log.
    const log = JSON.stringify((await api('GET', `/tasks/${started.json().task.id}/log`)).json());
    expect(log).not.toContain(PASSWORD);
  });

  it("without the password, the repository's files hold no message body, no login, no database row", async () => {
    const spool = hostLayout(f.sb.root).spool;
    const messages = (await filesUnder(spool)).filter((p) => /\/(cur|new)\//.test(p));
    expect(messages.length).toBeGreaterThan(10);
    const needles = new Set<string>();
    for (const m of messages.slice(0, 10)) {
      const text = (await readFile(m, 'utf8')).split(/\r?\n\r?\n/).slice(1).join('\n\n');
      const line = text.split(/\r?\n/).find((l) => l.trim().length >= 24);
      if (line) needles.add(line.trim().slice(0, 40));
    }
    expect(needles.size).toBeGreaterThan(3);
    const [user] = await sql<{ login: string }>(`SELECT login FROM t_domain_user ORDER BY login LIMIT 1`);
    needles.add(user.login);
    needles.add('t_container_item');
    needles.add(PASSWORD);
    const files = await filesUnder(repoDir);
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) {
      const bytes = await readFile(file);
      for (const n of needles) expect(bytes.includes(Buffer.from(n)), `${JSON.stringify(n)} in ${file}`).toBe(false);
    }
  });

  it("a single-entity restore (a user's calendars) from the encrypted generation puts back exactly what was saved", async () => {
    const [u] = await sql<{ uid: string; domain: string }>(
      `SELECT e.entry_uid AS uid, c.uid AS domain FROM t_directory_entry e JOIN t_container_item i ON i.id = e.item_id
         JOIN t_container c ON c.id = i.container_id WHERE e.kind = 'USER' ORDER BY e.entry_uid LIMIT 1`,
    );
    const calendar = `calendar:Default:${u.uid}`;
    const items = () => sql<{ uid: string }>(`SELECT uid, displayname FROM t_container_item WHERE container_id = (SELECT id FROM t_container WHERE uid = $1) ORDER BY uid`, [calendar]);
    const before = await items();
    expect(before.length).toBeGreaterThan(3);
    await sql(`DELETE FROM t_container_item WHERE container_id = (SELECT id FROM t_container WHERE uid = $1) AND uid IN (SELECT uid FROM t_container_item WHERE container_id = (SELECT id FROM t_container WHERE uid = $1) ORDER BY uid LIMIT 3)`, [calendar]);
    expect((await items()).length).toBe(before.length - 3);

    const r = await api('POST', '/restores', { operation: 'replace.calendars', generationId, entity: { kind: 'USER', uid: u.uid, domainUid: u.domain } });
    expect(r.statusCode, r.body).toBe(202);
    const done = await reg.container.resolve(TaskRegistry).whenDone(r.json().task.id);
    expect(done?.status, done?.error ?? '').toBe('SUCCEEDED');
    expect(await items()).toEqual(before);
  });
});
