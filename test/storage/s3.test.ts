import { randomBytes } from 'node:crypto';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Repository, RepositoryNotFoundError } from '../../server/engine/index.js';
import { connectS3 } from '../../server/storage/s3-client.js';
import { parseS3Location } from '../../server/storage/s3-location.js';
import { S3Storage } from '../../server/storage/s3.js';
import { storageConformance } from './conformance.js';
import { startFaultServer } from './s3-fault-server.js';
import { startS3, TEST_BUCKET, type TestS3 } from './s3-server.js';

let s3: TestS3;
const opened: S3Storage[] = [];

beforeAll(async () => {
  s3 = await startS3([TEST_BUCKET, 'root-bucket']);
});
afterAll(async () => {
  for (const s of opened) s.close();
  await s3?.stop();
});

/** A storage on the test server (or on `endpoint`), closed after the file's tests. */
function storage(location = s3.location(), env: NodeJS.ProcessEnv = {}, opts: ConstructorParameters<typeof S3Storage>[1] = {}): S3Storage {
  const s = new S3Storage(location, { env: { ...s3.env, ...env }, ...opts });
  opened.push(s);
  return s;
}

const hex = (c: string) => c.repeat(64);

storageConformance('S3 (s3rver on loopback)', async () => ({ storage: storage(), cleanup: async () => {} }));
storageConformance('S3 at the root of a bucket', async () => {
  // A bucket of its own per test, since the prefix is empty.
  const s = storage('s3://root-bucket');
  for (const t of ['data', 'index', 'snapshot', 'lock', 'reference'] as const) for await (const f of s.list(t)) await s.delete(t, f.name);
  await s.delete('config', 'config');
  return { storage: s, cleanup: async () => {} };
});

describe('S3 storage', () => {
  test('ranged reads give exactly the bytes asked for, and say when the object is shorter', async () => {
    const s = storage();
    const data = randomBytes(1024 * 1024 + 17);
    await s.write('data', hex('7'), data);
    for (const [offset, length] of [[0, 1], [1, 4096], [500_000, 300_000], [data.length - 1, 1], [123, data.length - 123]]) {
      expect((await s.read('data', hex('7'), offset, length)).equals(data.subarray(offset, offset + length))).toBe(true);
    }
    expect((await s.read('data', hex('7'), 1000)).equals(data.subarray(1000))).toBe(true);
    expect((await s.read('data', hex('7'), data.length)).length).toBe(0);
    expect((await s.read('data', hex('7'), 10, 0)).length).toBe(0);
    await expect(s.read('data', hex('7'), data.length - 10, 11)).rejects.toThrow(`truncated at ${data.length} bytes (wanted ${data.length - 10}+11)`);
    await expect(s.read('data', hex('7'), data.length + 5, 1)).rejects.toThrow(`truncated at ${data.length} bytes`);
  });

  test('a missing object is ENOENT with its key, as the engine expects of any storage', async () => {
    const s = storage();
    const err = await s.read('index', hex('9')).catch((e: unknown) => e as NodeJS.ErrnoException);
    expect(err).toMatchObject({ code: 'ENOENT' });
    expect(String((err as Error).message)).toContain(`s3://${TEST_BUCKET}/${s.prefix}/index/${hex('9')}`);
    await expect(Repository.open(s)).rejects.toBeInstanceOf(RepositoryNotFoundError);
  });

  test('keys follow the local repository layout under the prefix, and stray keys are not listed', async () => {
    const s = storage();
    await s.write('config', 'config', Buffer.from('c'));
    await s.write('data', 'ab' + '0'.repeat(62), Buffer.from('pack'));
    await s.write('snapshot', hex('5'), Buffer.from('snap'));
    const { client } = connectS3({ env: s3.env });
    try {
      // What a dead writer of a local repository copied into the bucket, or another tool, may leave.
      for (const k of [`data/ab/.tmp-${'ab' + '1'.repeat(62)}-1-00000000`, `data/cd/${'ab' + '2'.repeat(62)}`, `index/sub/${hex('3')}`]) {
        await client.send(new PutObjectCommand({ Bucket: TEST_BUCKET, Key: `${s.prefix}/${k}`, Body: Buffer.from('x') }));
      }
      const listed = await client.send(new ListObjectsV2Command({ Bucket: TEST_BUCKET, Prefix: s.prefix + '/' }));
      const keys = (listed.Contents ?? []).map((o) => o.Key!.slice(s.prefix.length + 1)).sort();
      expect(keys).toEqual(expect.arrayContaining(['config', `data/ab/${'ab' + '0'.repeat(62)}`, `snapshots/${hex('5')}`]));
    } finally {
      client.destroy();
    }
    const data: string[] = [];
    for await (const f of s.list('data')) data.push(f.name);
    expect(data).toEqual(['ab' + '0'.repeat(62)]);
    const index: string[] = [];
    for await (const f of s.list('index')) index.push(f.name);
    expect(index).toEqual([]);
  });

  test('a missing bucket is named, with what to do, whatever the first request is', async () => {
    const s = storage('s3://no-such-bucket/repo');
    const expected = /bucket no-such-bucket does not exist at http:\/\/127\.0\.0\.1:\d+; create it \(for example 'aws s3 mb s3:\/\/no-such-bucket'\)/;
    await expect(s.write('config', 'config', Buffer.from('x'))).rejects.toThrow(expected);
    await expect(s.stat('config', 'config')).rejects.toThrow(expected);
    await expect(s.read('snapshot', hex('1'))).rejects.toThrow(expected);
    await expect((async () => {
      for await (const f of s.list('snapshot')) void f;
    })()).rejects.toThrow(expected);
    // Not "no repository here": the administrator must create the bucket first.
    await expect(Repository.open(s)).rejects.toThrow(expected);
  });

  test('refused credentials are named, for every kind of request', async () => {
    const wrongKey = storage(s3.location(), { AWS_ACCESS_KEY_ID: 'NOT-A-KEY' });
    await expect(wrongKey.write('data', hex('1'), Buffer.from('x'))).rejects.toThrow(
      new RegExp(`writing s3://${TEST_BUCKET}/repos/\\w+/data/11/1+ at http://127.0.0.1:\\d+: the credentials were refused \\(InvalidAccessKeyId\\): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`),
    );
    // A HEAD's 403 has no body to say why. (s3rver checks the key id, not the SigV4 signature: a wrong
    // secret is tested against the failing server below.)
    await expect(wrongKey.stat('config', 'config')).rejects.toThrow(
      new RegExp(`checking s3://${TEST_BUCKET}/\\S+/config at \\S+: access denied \\(HTTP 403\\).*bucket ${TEST_BUCKET}`),
    );
  });

  test('half-given credentials and bad locations are refused before any request', () => {
    expect(() => new S3Storage(s3.location(), { env: { ...s3.env, AWS_SECRET_ACCESS_KEY: '' } })).toThrow(/set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    expect(() => new S3Storage(s3.location(), { env: { ...s3.env, AWS_ENDPOINT_URL_S3: 'localhost:9000' } })).toThrow(/invalid S3 endpoint "localhost:9000"/);
    expect(() => new S3Storage(s3.location(), { env: { ...s3.env, AWS_MAX_ATTEMPTS: 'many' } })).toThrow(/invalid AWS_MAX_ATTEMPTS "many"/);
    expect(() => parseS3Location('s3://')).toThrow(/expected s3:\/\/BUCKET\/PREFIX/);
    expect(() => parseS3Location('s3://bucket/a/../c')).toThrow(/invalid S3 key prefix/);
    expect(() => parseS3Location('s3://b!d/x')).toThrow(/invalid S3 bucket name "b!d"/);
    expect(parseS3Location('s3://backups/blue/mind/')).toEqual({ bucket: 'backups', prefix: 'blue/mind' });
    expect(parseS3Location('s3://backups')).toEqual({ bucket: 'backups', prefix: '' });
  });
});

describe('S3 storage against a failing server', () => {
  test('a 503 is retried with backoff, then the request succeeds', async () => {
    const fault = await startFaultServer(s3.endpoint, (n) => (n <= 2 ? { status: 503, code: 'SlowDown' } : 'forward'));
    try {
      const s = storage(s3.location(), { AWS_ENDPOINT_URL_S3: fault.endpoint });
      const data = randomBytes(100_000);
      await s.write('data', hex('4'), data);
      expect(fault.requests).toBe(3);
      expect((await s.read('data', hex('4'))).equals(data)).toBe(true);
    } finally {
      await fault.stop();
    }
  });

  test('a body cut off in the middle is fetched again', async () => {
    const location = s3.location();
    const data = randomBytes(300_000);
    await storage(location).write('data', hex('6'), data);
    let gets = 0;
    const fault = await startFaultServer(s3.endpoint, (_, req) => (req.method === 'GET' && ++gets === 1 ? { cutAfter: 100_000 } : 'forward'));
    try {
      const s = storage(location, { AWS_ENDPOINT_URL_S3: fault.endpoint });
      expect((await s.read('data', hex('6'), 10, 250_000)).equals(data.subarray(10, 250_010))).toBe(true);
      expect(gets).toBe(2);
    } finally {
      await fault.stop();
    }
  });

  test('a server that keeps failing gives up after the bounded attempts and says so', async () => {
    const fault = await startFaultServer(undefined, () => ({ status: 500, code: 'InternalError' }));
    try {
      const s = storage(s3.location(), { AWS_ENDPOINT_URL_S3: fault.endpoint, AWS_MAX_ATTEMPTS: '3' });
      await expect(s.write('index', hex('4'), Buffer.from('x'))).rejects.toThrow(
        new RegExp(`writing s3://${TEST_BUCKET}/\\S+ at ${fault.endpoint}: the server keeps failing \\(after 3 attempts\\): HTTP 500 InternalError`),
      );
      expect(fault.requests).toBe(3);
    } finally {
      await fault.stop();
    }
  });

  test('a bare 403 from a gateway names the bucket and what to check', async () => {
    const fault = await startFaultServer(undefined, () => ({ status: 403, code: 'AccessDenied' }));
    try {
      const s = storage(`s3://${TEST_BUCKET}/denied`, { AWS_ENDPOINT_URL_S3: fault.endpoint });
      await expect(s.read('config', 'config')).rejects.toThrow(
        `reading s3://${TEST_BUCKET}/denied/config at ${fault.endpoint}: access denied (AccessDenied): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and that they may list, read, write and delete in bucket ${TEST_BUCKET}`,
      );
      expect(fault.requests).toBe(1);
    } finally {
      await fault.stop();
    }
  });

  test('a wrong secret key is named as refused credentials', async () => {
    const fault = await startFaultServer(undefined, () => ({ status: 403, code: 'SignatureDoesNotMatch' }));
    try {
      const s = storage(s3.location(), { AWS_ENDPOINT_URL_S3: fault.endpoint, AWS_SECRET_ACCESS_KEY: 'wrong' });
      await expect(s.read('index', hex('2'))).rejects.toThrow(/the credentials were refused \(SignatureDoesNotMatch\): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    } finally {
      await fault.stop();
    }
  });

  test('a server that never answers times out instead of hanging', async () => {
    const fault = await startFaultServer(undefined, () => 'hang');
    try {
      const s = storage(s3.location(), { AWS_ENDPOINT_URL_S3: fault.endpoint }, { responseTimeoutMs: 300, maxAttempts: 2 });
      const started = Date.now();
      await expect(s.stat('data', hex('8'))).rejects.toThrow(/checking s3:\/\/\S+ at http:\/\/127\.0\.0\.1:\d+: no answer in time/);
      // Loose, for a busy machine: the server never answers, so a missing timeout would not end at all.
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(fault.requests).toBe(2);
    } finally {
      await fault.stop();
    }
  });

  test('an unreachable endpoint is named', async () => {
    const fault = await startFaultServer(undefined, () => 'hang');
    const endpoint = fault.endpoint;
    await fault.stop();
    const s = storage(s3.location(), { AWS_ENDPOINT_URL_S3: endpoint, AWS_MAX_ATTEMPTS: '2' });
    await expect(s.write('lock', hex('2'), Buffer.from('x'))).rejects.toThrow(`cannot reach the S3 endpoint ${endpoint} (after 2 attempts): ECONNREFUSED`);
  });

  test('no more requests are in flight than the parallelism allows', async () => {
    const fault = await startFaultServer(s3.endpoint, () => 'forward');
    try {
      const s = storage(s3.location(), { AWS_ENDPOINT_URL_S3: fault.endpoint }, { parallelism: 3 });
      await Promise.all(Array.from({ length: 24 }, (_, i) => s.write('data', i.toString(16).padStart(64, '0'), randomBytes(50_000))));
      expect(fault.requests).toBe(24);
      expect(fault.maxInFlight).toBeLessThanOrEqual(3);
      expect(fault.maxInFlight).toBeGreaterThan(1);
    } finally {
      await fault.stop();
    }
  });
});
