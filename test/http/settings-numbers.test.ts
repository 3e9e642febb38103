import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, startTestApi, type TestApi } from './harness.js';
import { startS3, type TestS3 } from '../storage/s3-server.js';
import { Repository } from '../../server/engine/index.js';
import { S3Storage } from '../../server/storage/index.js';

// Settings take whole numbers only (1e3 is not a number of days), and an s3:// location is checked when saved
// like a folder: the bucket answers, the prefix is empty or ours, and it takes writes.

const WORK = mkdtempSync(path.join(tmpdir(), 'dp-settings-numbers-'));
let api: TestApi;
let s3: TestS3;
const saved: Record<string, string | undefined> = {};
beforeAll(async () => {
  api = await startTestApi();
  s3 = await startS3();
  for (const [k, v] of Object.entries(s3.env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
});
afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  await api?.close();
  await s3?.stop();
  rmSync(WORK, { recursive: true, force: true });
});

const put = (payload: string) =>
  api.app.inject({ method: 'PUT', url: '/api/dataprotect/settings', headers: { 'x-bm-apikey': KEYS.admin, 'content-type': 'application/json' }, payload });
const body = (retention: string, location = path.join(WORK, 'repo')) =>
  `{"retentionDays":${retention},"backupEmails":true,"backupArchivedEmails":false,"backupTime":"01:00","repositoryLocation":${JSON.stringify(location)},"skippedTags":[]}`;

describe('whole numbers', () => {
  for (const n of ['1e3', '7.0', '1E1']) {
    it(`retentionDays ${n} is a 400 naming the field`, async () => {
      const r = await put(body(n));
      expect(r.statusCode).toBe(400);
      expect(r.json().errors).toEqual([{ field: 'body.retentionDays', message: 'must be a whole number written in digits (not 1e3 or 7.0)' }]);
    });
  }
  it('retentionDays 1000 is saved', async () => {
    const r = await put(body('1000'));
    expect(r.statusCode).toBe(200);
    expect(r.json().retentionDays).toBe(1000);
  });
});

describe('s3:// locations are checked when saved', () => {
  it('an empty prefix of a reachable bucket is saved', async () => {
    const r = await put(body('7', s3.location()));
    expect(r.statusCode).toBe(200);
  });
  it('a missing bucket is refused beside the field', async () => {
    const r = await put(body('7', 's3://no-such-bucket-dp/x'));
    expect(r.statusCode).toBe(400);
    expect(r.json().errors[0].field).toBe('body.repositoryLocation');
    expect(r.json().detail).toMatch(/no-such-bucket-dp/);
  });
  it('a prefix holding other objects is refused; a repository of ours is taken', async () => {
    const other = s3.location();
    const storage = new S3Storage(other);
    await storage.write('reference', 'notes', Buffer.from('x'));
    storage.close();
    const r = await put(body('7', other));
    expect(r.statusCode).toBe(400);
    expect(r.json().detail).toMatch(/holds other objects .*not a bm-dataprotect repository/);

    const ours = s3.location();
    const repoStorage = new S3Storage(ours);
    await (await Repository.init(repoStorage)).close();
    repoStorage.close();
    expect((await put(body('7', ours))).statusCode).toBe(200);
  });
});
