import { Command } from 'commander';
import { PasswordError, Repository } from '../../engine/index.js';
import { openStorage, PASSWORD_ENV, PASSWORD_FILE_ENV, passwordFromEnvironment, readPasswordFile } from '../../storage/index.js';
import { openRepo, output, repoPath, type RepoOptions } from '../context.js';

interface InitOptions extends RepoOptions {
  encryption?: boolean;
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
}
