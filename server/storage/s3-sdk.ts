import { createRequire } from 'node:module';

type Sdk = typeof import('@aws-sdk/client-s3');

let sdk: Sdk | undefined;

/**
 * The AWS SDK, loaded the first time an S3 repository is opened: it takes a third of a second of CPU to
 * load, which a command on a local repository (a one-mailbox restore, a daily backup) should not pay.
 * Loaded synchronously (its CommonJS build), so that opening a storage stays synchronous.
 */
export function s3Sdk(): Sdk {
  sdk ??= createRequire(import.meta.url)('@aws-sdk/client-s3') as Sdk;
  return sdk;
}
