import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { partsKept, RESERVED_REFERENCE_NAMES, type FileInfo, type FileType, type PartWriter, type Storage } from '../engine/index.js';
import { connectS3, type S3ConnectionOptions } from './s3-client.js';
import { describeS3Error, S3StorageError } from './s3-errors.js';
import { s3Sdk } from './s3-sdk.js';
import { RequestLimit } from './s3-limit.js';
import { formatS3Location, parseS3Location, type S3Location } from './s3-location.js';

/**
 * Key folder of each file type under the prefix: the same layout as a local repository, so a repository
 * folder copied into a bucket as it is opens from there, and back. One line per file type.
 */
// References (`latest`) sit beside `config` at the repository's root, as in a local repository.
const KEY_DIRS: Record<FileType, string> = { config: '', data: 'data', index: 'index', snapshot: 'snapshots', lock: 'locks', reference: '', key: 'keys' };

/** Packs are spread over data/00 .. data/ff by the first two characters of their name, as on disk. */
const FANNED_OUT: ReadonlySet<FileType> = new Set(['data']);

/**
 * A repository in an S3 bucket (AWS, MinIO, Ceph RGW, Garage...) at `s3://BUCKET/PREFIX`.
 *
 * Write-once holds without temp names: a single PUT of a whole object is atomic on S3 (readers and
 * listings see all of it or nothing, and an interrupted upload leaves nothing), so `list` only ever
 * shows complete files. Packs are bounded in size (~16 MiB), far under the 5 GiB of a single PUT, so
 * no multipart upload is needed, and a body held in memory can be sent again on a retry.
 *
 * Locks are plain objects rewritten in place, since S3 has no atomic rename and needs none here: in
 * the engine's lock protocol every process writes its own lock under a random name and only that
 * process ever rewrites it (the refresh); the others only read it or, once it is stale, delete it. A
 * PUT replaces an object whole, so a reader sees the old or the new lock, never a mix. Two processes
 * that lock at once each write first and list after, and S3's read-after-write consistency for PUT and
 * LIST means each sees the other's lock, so at least one of them backs off. On a store whose listings
 * lag, DP_S3_LISTING_LAG_MS makes each wait out the lag before it lists; and a backup whose lock a
 * prune did not see loses nothing, since prune deletes in two phases (server/engine/FORMAT.md).
 */
export class S3Storage implements Storage {
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly sdk = s3Sdk();
  private readonly endpoint: string | undefined;
  private readonly maxAttempts: number;
  private readonly limit: RequestLimit;
  private bucketSeen: Promise<void> | undefined;
  /**
   * AWS S3, MinIO and single-site Ceph RGW list an object as soon as its PUT returns (0, the default);
   * DP_S3_LISTING_LAG_MS tells the locks about a store whose listings lag (multi-site replication, some
   * gateways). Two-phase prune does not depend on it.
   */
  readonly listingLagMs: number;

  constructor(location: string | S3Location, opts: S3ConnectionOptions & { listingLagMs?: number } = {}) {
    const loc = typeof location === 'string' ? parseS3Location(location) : location;
    this.bucket = loc.bucket;
    this.prefix = loc.prefix;
    const conn = connectS3(opts);
    this.client = conn.client;
    this.endpoint = conn.endpoint;
    this.maxAttempts = conn.maxAttempts;
    this.limit = new RequestLimit(conn.parallelism);
    this.listingLagMs = opts.listingLagMs ?? listingLagFromEnv(opts.env ?? process.env);
  }

  get location(): string {
    return formatS3Location({ bucket: this.bucket, prefix: this.prefix });
  }

  /** The object key of a file; refuses names that could leave their folder. */
  key(type: FileType, name: string): string {
    if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith('.')) throw new Error(`invalid ${type} file name ${JSON.stringify(name)}`);
    if (type === 'config') return this.base() + 'config';
    if (type === 'reference') {
      if (RESERVED_REFERENCE_NAMES.has(name)) throw new Error(`invalid reference name ${JSON.stringify(name)}: the repository uses it`);
      return this.base() + name;
    }
    const dir = KEY_DIRS[type];
    return this.base() + (FANNED_OUT.has(type) ? `${dir}/${name.slice(0, 2)}/${name}` : `${dir}/${name}`);
  }

  async *list(type: FileType): AsyncIterable<FileInfo> {
    if (type === 'config') {
      const s = await this.stat('config', 'config');
      if (s) yield s;
      return;
    }
    const folder = type === 'reference' ? this.base() : this.base() + KEY_DIRS[type] + '/';
    const fanned = FANNED_OUT.has(type);
    let token: string | undefined;
    do {
      const page = await this.call('listing', folder, () =>
        this.client.send(new this.sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: folder, ContinuationToken: token, ...(fanned ? {} : { Delimiter: '/' }) })),
      );
      for (const o of page.Contents ?? []) {
        const rel = (o.Key ?? '').slice(folder.length);
        const name = fanned ? /^([0-9a-f]{2})\/([^/]+)$/.exec(rel)?.[2] : /^[^/]+$/.exec(rel)?.[0];
        // Anything else under the folder (a stray dot-file, a key of another shape) is not a repository file.
        if (!name || name.startsWith('.') || (fanned && !rel.startsWith(name.slice(0, 2) + '/'))) continue;
        if (type === 'reference' && RESERVED_REFERENCE_NAMES.has(name)) continue;
        yield { name, size: o.Size ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async read(type: FileType, name: string, offset = 0, length?: number): Promise<Buffer> {
    const key = this.key(type, name);
    const truncated = (size: number, want: number) =>
      new S3StorageError(`reading ${type} ${name.slice(0, 12)} in ${this.location}: truncated at ${size} bytes (wanted ${offset}+${want})`, 'ERANGE', undefined);
    const sizeOf = async () => {
      const s = await this.stat(type, name);
      if (!s) throw new S3StorageError(`reading ${type} ${name.slice(0, 12)}: s3://${this.bucket}/${key} does not exist`, 'ENOENT', 404);
      return s.size;
    };
    if (length === 0) {
      const size = await sizeOf();
      if (offset > size) throw truncated(size, 0);
      return Buffer.alloc(0);
    }
    const range = length !== undefined ? `bytes=${offset}-${offset + length - 1}` : offset > 0 ? `bytes=${offset}-` : undefined;
    // The SDK retries a request until its response starts; a body cut off after that is fetched again here.
    for (let attempt = 1; ; attempt++) {
      let bodyFailed = false;
      try {
        return await this.call('reading', key, async () => {
          const res = await this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range }));
          let body: Buffer;
          try {
            const bytes = await res.Body!.transformToByteArray();
            body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          } catch (err) {
            bodyFailed = true;
            throw err;
          }
          // Without a Content-Range the body is the whole object (no range asked, or one ignored). Some
          // servers answer more than the range (s3rver reads `bytes=0-0` as the whole object): cut it.
          const got = contentRange(res.ContentRange) ?? { start: 0, total: body.length };
          const want = length ?? got.total - offset;
          if (offset + want > got.total) throw truncated(got.total, want);
          const part = body.subarray(offset - got.start, offset - got.start + want);
          if (offset < got.start || part.length !== want) throw truncated(got.start + body.length, want);
          return part;
        });
      } catch (err) {
        if (err instanceof S3StorageError && err.status === 416) {
          // The range starts past the end: the file is shorter than asked.
          const size = await sizeOf();
          if (length === undefined && offset === size) return Buffer.alloc(0);
          throw truncated(size, length ?? 0);
        }
        if (!bodyFailed || attempt >= this.maxAttempts) throw err;
        await sleep(backoffMs(attempt));
      }
    }
  }

  async write(type: FileType, name: string, data: Buffer | readonly Uint8Array[]): Promise<void> {
    const key = this.key(type, name);
    const body = Buffer.isBuffer(data) ? data : Buffer.concat(data as Uint8Array[]);
    // Content-MD5 makes the server refuse a body damaged on the way instead of storing it.
    const md5 = createHash('md5').update(body).digest('base64');
    await this.call('writing', key, () =>
      this.client.send(new this.sdk.PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length, ContentMD5: md5 })),
    );
  }

  /**
   * Kept in memory and put whole at commit: an object's key is its name, known only then (a multipart upload
   * under a temporary key would need a copy to rename it).
   */
  writeParts(type: FileType): PartWriter {
    return partsKept((name, parts) => this.write(type, name, parts));
  }

  async delete(type: FileType, name: string): Promise<void> {
    const key = this.key(type, name);
    try {
      await this.call('deleting', key, () => this.client.send(new this.sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
    } catch (err) {
      if ((err as S3StorageError).code !== 'ENOENT') throw err;
    }
  }

  async stat(type: FileType, name: string): Promise<FileInfo | null> {
    const key = this.key(type, name);
    try {
      const head = await this.call('checking', key, () => this.client.send(new this.sdk.HeadObjectCommand({ Bucket: this.bucket, Key: key })));
      return { name, size: head.ContentLength ?? 0 };
    } catch (err) {
      if ((err as S3StorageError).code !== 'ENOENT') throw err;
      // A HEAD answers a bare 404 for a missing bucket too: tell the two apart once.
      await this.bucketExists();
      return null;
    }
  }

  /** Up to `max` keys under the prefix, whatever their shape: a location must be empty or a repository of ours. */
  async someKeys(max = 3): Promise<string[]> {
    await this.bucketExists();
    const page = await this.call('listing', this.base(), () =>
      this.client.send(new this.sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.base(), MaxKeys: max })),
    );
    return (page.Contents ?? []).map((o) => (o.Key ?? '').slice(this.base().length)).filter(Boolean);
  }

  /** Writes and removes a probe object (a dot-name, which no listing of the repository reads): writes are allowed. */
  async probeWrite(): Promise<void> {
    const key = `${this.base()}.dp-write-check-${randomBytes(6).toString('hex')}`;
    const body = Buffer.from('bm-dataprotect write check\n');
    await this.call('writing', key, () => this.client.send(new this.sdk.PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length })));
    await this.call('deleting', key, () => this.client.send(new this.sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
  }

  /** Closes the connections (sockets kept alive would hold a short-lived process open). */
  close(): void {
    this.client.destroy();
  }

  private base(): string {
    return this.prefix ? this.prefix + '/' : '';
  }

  private bucketExists(): Promise<void> {
    this.bucketSeen ??= this.call('opening', undefined, () => this.client.send(new this.sdk.HeadBucketCommand({ Bucket: this.bucket }))).then(
      () => {},
      (err: S3StorageError) => {
        this.bucketSeen = undefined;
        if (err.status === 404) throw describeS3Error({ name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } }, this.context('opening', undefined, 1));
        throw err;
      },
    );
    return this.bucketSeen;
  }

  /** One request under the parallelism limit, its failure said with the bucket and key. */
  private async call<T>(doing: string, key: string | undefined, request: () => Promise<T>): Promise<T> {
    try {
      return await this.limit.run(request);
    } catch (err) {
      const attempts = (err as { $metadata?: { attempts?: number } })?.$metadata?.attempts ?? 1;
      throw describeS3Error(err, this.context(doing, key, attempts));
    }
  }

  private context(doing: string, key: string | undefined, attempts: number) {
    return { doing, bucket: this.bucket, key, endpoint: this.endpoint, attempts };
  }
}

/** `bytes 10-19/20` -> where the body starts in the object, and the object's size. */
function contentRange(header: string | undefined): { start: number; total: number } | undefined {
  const m = /^bytes (\d+)-\d+\/(\d+)\s*$/.exec(header ?? '');
  return m ? { start: Number(m[1]), total: Number(m[2]) } : undefined;
}

/** Exponential backoff with full jitter: 0..(100 ms * 2^attempt), at most 10 s. */
function backoffMs(attempt: number): number {
  return Math.random() * Math.min(10_000, 100 * 2 ** attempt);
}

function listingLagFromEnv(env: NodeJS.ProcessEnv): number {
  const raw = env.DP_S3_LISTING_LAG_MS?.trim();
  if (!raw) return 0;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 600_000) throw new Error(`invalid DP_S3_LISTING_LAG_MS ${JSON.stringify(raw)}: expected milliseconds, 0 to 600000`);
  return n;
}
