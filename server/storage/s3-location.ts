/** Where a repository lives in object storage: `s3://BUCKET/PREFIX` (the prefix may be empty). */
export interface S3Location {
  bucket: string;
  /** Key prefix of every repository file, without a trailing slash ('' for the bucket's root). */
  prefix: string;
}

export function isS3Location(location: string): boolean {
  return /^s3:\/\//i.test(location);
}

/**
 * Parses `s3://BUCKET/PREFIX`. Bucket names follow S3's rules loosely (MinIO, Ceph and Garage accept a
 * little more than AWS), so only what would make a broken request is refused.
 */
export function parseS3Location(location: string): S3Location {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(location.trim());
  const hint = `expected s3://BUCKET/PREFIX, for example s3://backups/bluemind`;
  if (!m) throw new Error(`invalid S3 location ${JSON.stringify(location)}: ${hint}`);
  const [, bucket, rawPrefix] = m;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$/.test(bucket)) {
    throw new Error(`invalid S3 bucket name ${JSON.stringify(bucket)} in ${JSON.stringify(location)}: ${hint}`);
  }
  const prefix = rawPrefix.replace(/\/+$/, '');
  if (prefix.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    if (prefix !== '') throw new Error(`invalid S3 key prefix ${JSON.stringify(rawPrefix)} in ${JSON.stringify(location)}: ${hint}`);
  }
  return { bucket, prefix };
}

export function formatS3Location(loc: S3Location): string {
  return `s3://${loc.bucket}/${loc.prefix}`;
}
