import { Command } from 'commander';
import { PasswordError, Repository, RepositoryNotFoundError } from '../../engine/index.js';
import { openStorage, PASSWORD_ENV, PASSWORD_FILE_ENV, passwordFromEnvironment, readPasswordFile } from '../../storage/index.js';
import { copyGenerations, selectGenerations } from '../../dataprotect/generation/copy.js';
import { openRepo, output, repoPath, UsageError, type RepoOptions } from '../context.js';
import { bytes, duration } from '../output.js';

interface InitOptions extends RepoOptions {
  encryption?: boolean;
}

interface CopyOptions {
  from?: string;
  to?: string;
  fromPasswordFile?: string;
  toPasswordFile?: string;
  readData?: boolean;
  json?: boolean;
}

interface KeyAddOptions extends RepoOptions {
  newPasswordFile?: string;
}

const NEW_PASSWORD_ENV = 'DP_NEW_REPOSITORY_PASSWORD';

export function register(program: Command): void {
  const repo = program.command('repo').description('manage repositories');
  repo
    .command('init')
    .description('create an empty repository in a directory (a local disk or an NFS mount) or under s3://BUCKET/PREFIX')
    .option('--repo <dir>', 'repository directory')
    .option('--encryption', `encrypt everything it will hold (AES-256-GCM) with a password from --password-file, ${PASSWORD_FILE_ENV} or ${PASSWORD_ENV}`)
    .option('--json', 'print the result as JSON')
    .action(async (opts: InitOptions) => {
      const out = output(opts);
      const dir = repoPath(opts);
      let password: string | undefined;
      if (opts.encryption) {
        password = await passwordFromEnvironment();
        if (!password) throw new PasswordError(`repo init --encryption needs a password: give --password-file FILE (readable by its owner only), or set ${PASSWORD_FILE_ENV} or ${PASSWORD_ENV}`);
      }
      const r = await Repository.init(openStorage(dir), { password });
      const how = r.encrypted ? `, encrypted; keep its password safe: without it nothing can be restored` : '';
      out.summary(
        { repository: dir, id: r.config.id, version: r.config.version, encrypted: r.encrypted, ...(r.keyId ? { key: r.keyId } : {}), chunkers: r.config.chunkers },
        `created repository ${r.config.id.slice(0, 8)} at ${dir} (format version ${r.config.version}${how})`,
      );
      await r.close();
    });

  const key = repo.command('key').description('passwords of an encrypted repository (each one a key file under keys/)');
  key
    .command('list')
    .description("list the repository's keys; * marks the one the password given opened")
    .option('--repo <dir>', 'repository directory')
    .option('--json', 'print the result as JSON')
    .action(async (opts: RepoOptions) => {
      const out = output(opts);
      const r = await openRepo({ ...opts });
      try {
        const keys = await r.listKeys();
        out.summary(
          { keys: keys.map((k) => ({ ...k, current: k.id === r.keyId })) },
          keys.map((k) => `${k.id === r.keyId ? '*' : ' '} ${k.id.slice(0, 8)}  ${k.created}  ${k.hostname}`).join('\n'),
        );
      } finally {
        await r.close();
      }
    });
  key
    .command('add')
    .description(`add a password (the repository opens with the current one, from --password-file, ${PASSWORD_FILE_ENV} or ${PASSWORD_ENV})`)
    .option('--repo <dir>', 'repository directory')
    .option('--new-password-file <file>', `the new password, from a file only its owner can read (or ${NEW_PASSWORD_ENV})`)
    .option('--json', 'print the result as JSON')
    .action(async (opts: KeyAddOptions) => {
      const out = output(opts);
      const password = opts.newPasswordFile ? await readPasswordFile(opts.newPasswordFile) : process.env[NEW_PASSWORD_ENV];
      if (!password) throw new PasswordError(`repo key add needs the new password: give --new-password-file FILE (readable by its owner only) or set ${NEW_PASSWORD_ENV}`);
      const r = await openRepo(opts);
      try {
        const id = await r.addKey(password);
        out.summary({ key: id }, `added key ${id.slice(0, 8)} to ${r.location}`);
      } finally {
        await r.close();
      }
    });
  key
    .command('remove')
    .description('withdraw a password (never the last one)')
    .argument('<id>', "key id, or a unique prefix of it (see 'repo key list')")
    .option('--repo <dir>', 'repository directory')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: RepoOptions) => {
      const out = output(opts);
      const r = await openRepo(opts);
      try {
        const removed = await r.removeKey(id);
        out.summary({ removed }, `removed key ${removed.slice(0, 8)} from ${r.location}${removed === r.keyId ? ' (the one this password opened: use another from now on)' : ''}`);
      } finally {
        await r.close();
      }
    });

  repo
    .command('copy')
    .description('copy generations (every part and their records) to another repository, storing only what it lacks; resumable, verified at the end')
    .argument('[generation...]', "generation ids, or 'latest' (default: every complete generation)")
    .requiredOption('--from <location>', 'the repository to copy from (a directory or s3://BUCKET/PREFIX)')
    .requiredOption('--to <location>', 'the repository to copy to; created when absent (encrypted only with --to-password-file)')
    .option('--from-password-file <file>', `password of an encrypted source (default: --password-file, ${PASSWORD_FILE_ENV} or ${PASSWORD_ENV})`)
    .option('--to-password-file <file>', `password of an encrypted destination, or of the one created (default for an existing one: --password-file, ${PASSWORD_FILE_ENV} or ${PASSWORD_ENV})`)
    .option('--read-data', 'at the end, read every blob back from the destination (default: check that each is indexed in a pack that is there)')
    .option('--json', 'progress as JSON lines, then a summary object')
    .action(async (refs: string[], opts: CopyOptions) => {
      const out = output(opts);
      const fromLoc = repoPath({ repo: opts.from });
      const toLoc = repoPath({ repo: opts.to });
      if (fromLoc === toLoc) throw new UsageError(`--from and --to are both ${fromLoc}: give another destination`);
      const fromPassword = opts.fromPasswordFile ? await readPasswordFile(opts.fromPasswordFile) : undefined;
      const toPassword = opts.toPasswordFile ? await readPasswordFile(opts.toPasswordFile) : undefined;
      const started = Date.now();
      const from = await Repository.open(openStorage(fromLoc), { password: fromPassword ?? passwordFromEnvironment });
      let to: Repository | undefined;
      try {
        const toStorage = openStorage(toLoc);
        let created = false;
        try {
          to = await Repository.open(toStorage, { password: toPassword ?? passwordFromEnvironment });
        } catch (err) {
          if (!(err instanceof RepositoryNotFoundError)) throw err;
          // Nothing is created for generations that cannot be copied.
          await selectGenerations(from, refs);
          to = await Repository.init(toStorage, { password: toPassword });
          created = true;
          out.notice(`created repository ${to.config.id.slice(0, 8)} at ${toLoc}${to.encrypted ? ' (encrypted)' : ''}`);
        }
        const r = await copyGenerations({
          from, to, generations: refs, readData: opts.readData,
          notice: (m) => out.notice(m),
          progress: (p) =>
            out.progress(
              { generation: p.generation, snapshotsDone: p.snapshotsDone, snapshotsTotal: p.snapshotsTotal, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal, blobsNew: p.blobsNew, bytesAdded: p.bytesAdded },
              { value: p.bytesDone, total: p.bytesTotal, line: `${p.snapshotsDone}/${p.snapshotsTotal} snapshots, ${bytes(p.bytesDone)} of ${bytes(p.bytesTotal)}, ${bytes(p.bytesAdded)} written${p.generation ? `, ${p.generation}` : ''}` },
            ),
        });
        const ms = Date.now() - started;
        const copied = r.generations.filter((g) => g.outcome === 'copied').length;
        out.summary(
          { from: fromLoc, to: toLoc, created, generations: r.generations, blobsNew: r.blobsNew, bytesAdded: r.bytesAdded, reencoded: r.reencoded, verified: r.verified, durationMs: ms },
          [
            `${r.generations.length} generation(s): ${copied} copied, ${r.generations.length - copied} already there, in ${duration(ms)}`,
            ...r.generations.map((g) => `  ${g.outcome.padEnd(8)} ${g.id}`),
            `stored ${r.blobsNew} new blob(s), ${bytes(r.bytesAdded)} written to ${toLoc}${r.reencoded ? ' (re-encoded for the destination)' : ''}`,
            `verified: ${r.verified.snapshots} snapshot(s), ${r.verified.trees} tree(s), ${r.verified.blobs} blob(s)${r.verified.blobsRead ? ' read back' : ' present'}`,
          ].join('\n'),
        );
      } finally {
        await from.close();
        await to?.close();
      }
    });
}
