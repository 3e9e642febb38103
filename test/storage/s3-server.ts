import { randomBytes } from 'node:crypto';
import S3rver from 's3rver';
import { tempDir } from '../engine/helpers.js';

export interface TestS3 {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** The AWS_* settings a client needs to reach it (s3rver's built-in account). */
  env: NodeJS.ProcessEnv;
  /** Where s3rver keeps the objects (the bench measures its size). */
  directory: string;
  /** A new, empty repository location in the test bucket. */
  location(): string;
  stop(): Promise<void>;
}

export const TEST_BUCKET = 'dataprotect-test';

/** A real S3 server (s3rver) on loopback, on a free port, keeping its objects in a temp folder. */
export async function startS3(buckets: string[] = [TEST_BUCKET]): Promise<TestS3> {
  const dir = await tempDir('dp-s3rver-');
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    directory: dir.path,
    silent: true,
    vhostBuckets: false,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    directory: dir.path,
    env: { AWS_ENDPOINT_URL_S3: endpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' },
    location: () => `s3://${buckets[0]}/repos/${randomBytes(6).toString('hex')}`,
    stop: async () => {
      await server.close();
      await dir.cleanup();
    },
  };
}
