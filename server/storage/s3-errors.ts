/** What was being done when an S3 request failed, for a message that names the bucket and key. */
export interface S3ErrorContext {
  /** 'reading', 'writing', 'listing', 'deleting', 'checking' ... */
  doing: string;
  bucket: string;
  key?: string;
  endpoint: string | undefined;
  attempts: number;
}

/** A failed S3 request, said in words an administrator can act on. `code` is ENOENT for a missing object. */
export class S3StorageError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly status: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'S3StorageError';
  }
}

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
  $retryable?: unknown;
}

const CREDENTIAL_CODES = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken', 'TokenRefreshRequired']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ETIMEDOUT']);

export function sdkStatus(err: unknown): number | undefined {
  return (err as SdkError | undefined)?.$metadata?.httpStatusCode;
}

export function sdkName(err: unknown): string {
  const e = err as SdkError | undefined;
  return e?.Code ?? e?.name ?? 'Error';
}

/** Whether the object (not the bucket) is missing. */
export function isMissingObject(err: unknown): boolean {
  const name = sdkName(err);
  return name === 'NoSuchKey' || name === 'NotFound' || (sdkStatus(err) === 404 && name !== 'NoSuchBucket');
}

export function isMissingBucket(err: unknown): boolean {
  return sdkName(err) === 'NoSuchBucket';
}

export function describeS3Error(err: unknown, ctx: S3ErrorContext): S3StorageError {
  if (err instanceof S3StorageError) return err;
  const e = (err ?? {}) as SdkError;
  const name = sdkName(err);
  const status = sdkStatus(err);
  const where = ctx.key ? `s3://${ctx.bucket}/${ctx.key}` : `bucket ${ctx.bucket}`;
  const at = ctx.endpoint ? ` at ${ctx.endpoint}` : '';
  const what = `${ctx.doing} ${where}`;
  const tries = ctx.attempts > 1 ? ` (after ${ctx.attempts} attempts)` : '';

  if (isMissingBucket(err)) {
    return new S3StorageError(
      `${what}: bucket ${ctx.bucket} does not exist${at}; create it (for example 'aws s3 mb s3://${ctx.bucket}') or correct the repository location`,
      'NoSuchBucket', status, { cause: err },
    );
  }
  if (status === 403 || name === 'AccessDenied' || CREDENTIAL_CODES.has(name)) {
    const why = CREDENTIAL_CODES.has(name)
      ? `the credentials were refused (${name}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`
      : `access denied (${/^(403|Forbidden|Unknown(Error)?)$/.test(name) ? 'HTTP 403' : name}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and that they may list, read, write and delete in bucket ${ctx.bucket}`;
    return new S3StorageError(`${what}${at}: ${why}`, 'EACCES', status ?? 403, { cause: err });
  }
  if (name === 'CredentialsProviderError') {
    return new S3StorageError(
      `${what}: no S3 credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)`,
      'EACCES', undefined, { cause: err },
    );
  }
  if (isMissingObject(err)) {
    return new S3StorageError(`${what}: no such object`, 'ENOENT', status, { cause: err });
  }
  if (name === 'TimeoutError' || e.code === 'ETIMEDOUT') {
    return new S3StorageError(`${what}${at}: no answer in time${tries}: ${e.message ?? name}`, 'ETIMEDOUT', status, { cause: err });
  }
  if (e.code && NETWORK_CODES.has(e.code)) {
    const trouble = e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 'the connection to the S3 endpoint' : 'cannot reach the S3 endpoint';
    const was = e.code === 'ECONNRESET' || e.code === 'EPIPE' ? ' was cut' : '';
    return new S3StorageError(
      `${what}: ${trouble} ${ctx.endpoint ?? '(AWS)'}${was}${tries}: ${e.code}; check AWS_ENDPOINT_URL_S3 and the network`,
      e.code, status, { cause: err },
    );
  }
  if (status !== undefined && status >= 500) {
    return new S3StorageError(`${what}${at}: the server keeps failing${tries}: HTTP ${status} ${name}`, 'EIO', status, { cause: err });
  }
  return new S3StorageError(`${what}${at}: ${name}${status ? ` (HTTP ${status})` : ''}: ${e.message ?? String(err)}`, e.code, status, { cause: err });
}
