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

export interface S3Options {
  /** Called with each object's key before it is stored (a test can hold an upload there). */
  beforePut?: (key: string) => Promise<void>;
}

/** A real S3 server (s3rver) on loopback, on a free port, keeping its objects in a temp folder. */
export async function startS3(buckets: string[] = [TEST_BUCKET], opts: S3Options = {}): Promise<TestS3> {
  const dir = await tempDir('dp-s3rver-');
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    directory: dir.path,
    silent: true,
    vhostBuckets: false,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  atomicPuts(server, opts.beforePut);
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

/**
 * S3 stores an object only once its whole body has arrived; s3rver streams it into place as it comes, so a client
 * killed mid-upload leaves a truncated object listed. The test server takes the body whole first, as S3 does, and
 * drops an upload whose body never ended.
 */
function atomicPuts(server: S3rver, beforePut?: (key: string) => Promise<void>): void {
  const store = (server as unknown as { store: { putObject(o: { content: unknown }): Promise<unknown> } }).store;
  const put = store.putObject.bind(store);
  store.putObject = async (object) => {
    await beforePut?.((object as unknown as { key: string }).key);
    if (Buffer.isBuffer(object.content)) return put(object);
    const chunks: Buffer[] = [];
    for await (const chunk of object.content as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
    object.content = Buffer.concat(chunks);
    return put(object);
  };
}
