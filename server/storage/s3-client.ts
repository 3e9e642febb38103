import type { S3Client } from '@aws-sdk/client-s3';
import { s3Sdk } from './s3-sdk.js';

/** Knobs of the S3 connection; every one has a default fit for a backup over a WAN. */
export interface S3ConnectionOptions {
  /** Where AWS_* settings are read from (the process environment by default). */
  env?: NodeJS.ProcessEnv;
  /** Attempts per request, first one included (AWS_MAX_ATTEMPTS, else 5). */
  maxAttempts?: number;
  /** Requests in flight at once, per storage (and sockets per endpoint). */
  parallelism?: number;
  /** Time to open a connection. */
  connectTimeoutMs?: number;
  /** Time from sending a request to its response headers. */
  responseTimeoutMs?: number;
  /** Time a connection may stay silent while sending or receiving a body. */
  idleTimeoutMs?: number;
}

export interface S3Connection {
  client: S3Client;
  /** The endpoint given in the environment, or undefined for AWS itself (for messages). */
  endpoint: string | undefined;
  region: string;
  parallelism: number;
  maxAttempts: number;
}

/**
 * An S3 client configured from the AWS SDK's standard environment: AWS_ENDPOINT_URL_S3 or
 * AWS_ENDPOINT_URL (then path-style addressing, as MinIO, Ceph RGW, Garage and s3rver expect),
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (else the SDK's usual chain: profile,
 * SSO, instance role), AWS_REGION (us-east-1 by default).
 *
 * Retries are the SDK's standard strategy (exponential backoff with full jitter on 5xx, throttling,
 * timeouts and connection errors, re-signing each attempt, with a retry quota that stops a retry storm
 * against a sick endpoint) rather than a wrapper of ours: it classifies S3's own throttling codes
 * (SlowDown, RequestTimeout, ...) and clock skew, which a wrapper would have to copy.
 */
export function connectS3(opts: S3ConnectionOptions = {}): S3Connection {
  const env = opts.env ?? process.env;
  const endpoint = nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL);
  if (endpoint && !/^https?:\/\/[^/]+/i.test(endpoint)) {
    throw new Error(`invalid S3 endpoint ${JSON.stringify(endpoint)} (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL): expected http(s)://HOST[:PORT]`);
  }
  const region = nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION) ?? 'us-east-1';
  const maxAttempts = opts.maxAttempts ?? positiveInt(env.AWS_MAX_ATTEMPTS, 'AWS_MAX_ATTEMPTS') ?? 5;
  const parallelism = opts.parallelism ?? 8;
  const keyId = nonEmpty(env.AWS_ACCESS_KEY_ID);
  const secret = nonEmpty(env.AWS_SECRET_ACCESS_KEY);
  if (Boolean(keyId) !== Boolean(secret)) {
    throw new Error(`S3 credentials are incomplete: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`);
  }
  // The SDK warns on Node 20 about its own future releases; the project pins its version, so the
  // warning tells an administrator nothing they can act on.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const agent = { keepAlive: true, maxSockets: parallelism };
  const client = new (s3Sdk().S3Client)({
    region,
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    ...(keyId && secret ? { credentials: { accessKeyId: keyId, secretAccessKey: secret, sessionToken: nonEmpty(env.AWS_SESSION_TOKEN) } } : {}),
    maxAttempts,
    retryMode: 'standard',
    // Flexible checksums send bodies aws-chunked, which several S3-compatible servers store corrupted;
    // the engine verifies every blob's hash on read, and writes carry a Content-MD5 instead.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: opts.connectTimeoutMs ?? 10_000,
      requestTimeout: opts.responseTimeoutMs ?? 300_000,
      throwOnRequestTimeout: true,
      socketTimeout: opts.idleTimeoutMs ?? 60_000,
      httpAgent: agent,
      httpsAgent: agent,
    },
  });
  return { client, endpoint, region, parallelism, maxAttempts };
}

function nonEmpty(v: string | undefined): string | undefined {
  return v && v.trim() !== '' ? v.trim() : undefined;
}

function positiveInt(v: string | undefined, name: string): number | undefined {
  if (nonEmpty(v) === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`invalid ${name} ${JSON.stringify(v)}: expected a whole number of attempts, 1 or more`);
  return n;
}
