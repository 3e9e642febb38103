import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerServer, type ServerRegistration } from '../../plugin/server.js';
import { readGenerations } from '../../server/dataprotect/generation/format.js';
import { openLocation } from '../../server/dataprotect/generation/repository.js';
import { BACKUP_RUNNER } from '../../server/dataprotect/services.js';
import { SettingsService } from '../../server/dataprotect/settings.js';
import { ClusterCoordinator } from '../../server/jobs/cluster.js';
import { BackupScheduler } from '../../server/jobs/scheduler.js';
import { TaskRegistry } from '../../server/jobs/task-registry.js';
import { dropDatabase } from '../../server/pg/databases.js';
import type { Task } from '../../server/store/task-record.js';
import { seededHost, type BackupFixture } from '../backup/helpers.js';
import { KEYS, PG_BASE, testAuth } from '../http/harness.js';
import { startS3, type TestS3 } from '../storage/s3-server.js';

// The off-site copy setting: after the nightly run, its generation is copied to another repository (here on S3) by a
// task of kind copy, and the summary shows the last copy.

process.env.DP_VALIDATE_RESPONSES = '1';
let f: BackupFixture;
let s3: TestS3;
let work: string;
let repoDir: string;
let app: FastifyInstance;
let reg: ServerRegistration;
const databaseUrl = `${PG_BASE}/dp_test_copy_${randomBytes(5).toString('hex')}`;

const api = (method: 'GET' | 'PUT', url: string, payload?: unknown) =>
  app.inject({ method, url: `/api/dataprotect${url}`, headers: { 'x-bm-apikey': KEYS.admin }, ...(payload ? { payload: payload as object } : {}) });

beforeAll(async () => {
  f = await seededHost('copyplugin', 2);
  s3 = await startS3();
  Object.assign(process.env, s3.env);
  work = await mkdtemp(path.join(tmpdir(), 'dp-copy-plugin-'));
  repoDir = path.join(work, 'repository');
  app = Fastify();
  reg = await registerServer(
    { fastify: app, databaseUrl, auth: testAuth, defaultRepositoryLocation: repoDir, taskFilesDir: path.join(work, 'files'), nodeId: 'node-copy', log: { info: () => {}, error: () => {} } },
    { installation: { port: f.host, productVersion: 'test-5.1', mailer: null } },
  );
  await app.ready();
}, 120_000);
afterAll(async () => {
  await app?.close();
  await reg?.close();
  await dropDatabase(databaseUrl).catch(() => {});
  await f?.cleanup();
  await s3?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the off-site copy', () => {
  const base = { retentionDays: 7, backupEmails: true, backupArchivedEmails: false, backupTime: '01:00', skippedTags: [] as string[] };

  it('is a setting, empty by default, checked like the repository location when saved', async () => {
    expect((await api('GET', '/settings')).json().offsiteCopyLocation).toBe('');
    for (const [location, message] of [
      ['relative/folder', /must be an absolute directory/],
      ['/etc/offsite', /system folder \/etc/],
      [repoDir, /the repository itself/],
    ] as const) {
      const r = await api('PUT', '/settings', { ...base, repositoryLocation: repoDir, offsiteCopyLocation: location });
      expect(r.statusCode, location).toBe(400);
      expect(r.json().errors[0].field).toBe('body.offsiteCopyLocation');
      expect(r.json().detail).toMatch(message);
    }
    // Left out: unchanged (a client that does not know the field keeps it).
    expect((await api('PUT', '/settings', { ...base, repositoryLocation: repoDir })).statusCode).toBe(200);
    expect((await api('GET', '/settings')).json().offsiteCopyLocation).toBe('');
  });

  it('a nightly run with an off-site location is followed by a copy task, and the summary shows it', async () => {
    const offsite = s3.location();
    const saved = await api('PUT', '/settings', { ...base, repositoryLocation: repoDir, offsiteCopyLocation: offsite });
    expect(saved.statusCode, saved.body).toBe(200);
    expect(saved.json().offsiteCopyLocation).toBe(offsite);
    expect((await api('GET', '/summary')).json().lastOffsiteCopy).toBeNull();

    const tasks = reg.container.resolve(TaskRegistry);
    const scheduler = new BackupScheduler(reg.container.resolve(SettingsService), reg.container.resolve(BACKUP_RUNNER), reg.container.resolve(ClusterCoordinator), {
      info: () => {}, error: () => {},
    });
    expect(await scheduler.runScheduled(new Date())).toBe('started');
    const backup = (await tasks.list({ kind: 'backup', offset: 0, limit: 1 })).items[0];
    const ran = await tasks.whenDone(backup.id);
    expect(ran?.status, ran?.error ?? '').toBe('SUCCEEDED');
    const generationId = ran!.result!.generationId as string;

    // The copy task starts once the backup's lock is released.
    let copy: Task | undefined;
    for (let i = 0; i < 600 && !copy; i++) {
      copy = (await tasks.list({ kind: 'copy', offset: 0, limit: 1 })).items[0];
      if (!copy) await new Promise((r) => setTimeout(r, 100));
    }
    expect(copy, 'a copy task').toBeDefined();
    expect(copy!.target).toBe(generationId);
    expect(copy!.title).toBe(`Off-site copy of the generation ${generationId}`);
    expect(copy!.titlePhrase).toEqual({ key: 'task.title.copy', params: { generation: generationId } });
    const done = await tasks.whenDone(copy!.id);
    expect(done?.status, done?.error ?? '').toBe('SUCCEEDED');
    expect(done!.result).toMatchObject({ generationId, location: offsite });
    expect(done!.result!.bytesAdded).toBeGreaterThan(0);

    // The generation is in the off-site repository, complete, and `latest` names it.
    const copyRepo = (await openLocation(offsite))!;
    try {
      const gens = await readGenerations(copyRepo);
      expect(gens.map((g) => [g.record.id, g.interrupted, g.record.status])).toEqual([[generationId, false, 'VALID']]);
      expect(JSON.parse((await copyRepo.readReference('latest'))!.toString()).generation).toBe(generationId);
    } finally {
      await copyRepo.close();
    }

    const summary = (await api('GET', '/summary')).json();
    expect(summary.lastOffsiteCopy).toMatchObject({ taskId: copy!.id, status: 'SUCCEEDED', generationId, location: offsite, error: null });
    expect(summary.lastOffsiteCopy.bytesAdded).toBe(done!.result!.bytesAdded);

    // The task history lists it under its kind.
    const listed = await app.inject({ method: 'GET', url: '/api/dataprotect/tasks?kind=copy', headers: { 'x-bm-apikey': KEYS.admin } });
    expect(listed.statusCode).toBe(200);
    expect(JSON.stringify(listed.json())).toContain(copy!.id);
  }, 240_000);
});
