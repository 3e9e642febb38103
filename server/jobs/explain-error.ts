// The one home of "what went wrong, and what to do about it": a failure's low-level code (ECONNREFUSED, EACCES,
// ENOSPC, a repository that is not there) becomes a sentence an administrator can act on, with a message key and
// its parameters so that the console says it in its own language. Anything not recognised keeps its own words.

/** The services a task talks to, named in the explanation of a connection that failed. */
export type Service = 'mail' | 'postgresql';

export interface ExplainedError {
  /** A message key of the console (ui-components/src/i18n.ts), under `error.`. */
  key: string;
  params: Record<string, string | number>;
  /** The same sentence in English, for the log, the CLI and API callers that do not translate. */
  message: string;
}

const SERVICE = Symbol('dp.service');

interface ServiceTag {
  service: Service;
  address: string;
}

interface Tagged {
  [SERVICE]?: ServiceTag;
}

/**
 * Marks an error as raised while talking to a service at `address` (host:port), so that its explanation can say
 * which server did not answer. Returns the same error.
 */
export function fromService<E>(service: Service, address: string, err: E): E {
  if (err && typeof err === 'object') (err as Tagged)[SERVICE] = { service, address };
  return err;
}

/** The English templates; the console has the same keys under `error.` in every language. */
export const EXPLANATIONS = {
  'mail.refused': 'The mail server ({address}) refused the connection: is Dovecot running?',
  'mail.unreachable': 'The mail server ({address}) cannot be reached ({reason}): is Dovecot running, and is the address right?',
  'postgresql.refused': 'PostgreSQL ({address}) refused the connection: is PostgreSQL running?',
  'postgresql.unreachable': 'PostgreSQL ({address}) cannot be reached ({reason}): is it running, and is the address right?',
  'service.refused': 'The server {address} refused the connection: is the service running?',
  'repository.missing': 'There is no backup repository at {path}: is the share mounted? Otherwise check the repository location in the settings.',
  'repository.passwordMissing': 'The backup repository at {path} is encrypted and no password is configured: set DP_REPOSITORY_PASSWORD_FILE in the environment of the bm-dataprotect service to a file (mode 0600) holding its password, then restart the service.',
  'repository.passwordWrong': 'The password configured for the encrypted backup repository at {path} is not one of its passwords: check the file DP_REPOSITORY_PASSWORD_FILE names.',
  'path.missing': '{path} does not exist: is the share mounted?',
  'path.permission': 'Permission denied on {path}: the bm-dataprotect service must be allowed to write there (check its owner and mode).',
  'path.readonly': '{path} is on a read-only filesystem: mount it writable or choose another repository location.',
  'path.notFolder': 'A part of {path} is not a folder: check the repository location in the settings.',
  'disk.full': 'The disk holding {path} is full: free some space (or apply the retention policy), or choose a larger location.',
  'disk.fullNoPath': 'The disk is full: free some space (or apply the retention policy), or choose a larger location.',
  'share.away': 'The network share holding {path} does not answer ({reason}): check that it is mounted and its server is up.',
} as const;

export type ExplanationKey = keyof typeof EXPLANATIONS;

function explained(key: ExplanationKey, params: Record<string, string | number>): ExplainedError {
  const message = EXPLANATIONS[key].replace(/\{(\w+)\}/g, (_, n: string) => String(params[n] ?? `{${n}}`));
  return { key: `error.${key}`, params, message };
}

interface Low {
  code?: string;
  path?: string;
  address?: string;
  port?: number;
  name?: string;
  message?: string;
  kind?: string;
  /** PasswordError: why, and of which repository. */
  reason?: string;
  location?: string;
}

/** The error and its causes, outermost first (a wrapped errno error keeps its code in `cause`). */
function chain(err: unknown): (Low & Tagged)[] {
  const out: (Low & Tagged)[] = [];
  let e: unknown = err;
  while (e && typeof e === 'object' && out.length < 8) {
    out.push(e as Low & Tagged);
    e = (e as { cause?: unknown }).cause;
  }
  return out;
}

const IMAP_PORTS = new Set([143, 993, 1143, 10143]);
const NETWORK = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET']);
const REASONS: Record<string, string> = {
  ETIMEDOUT: 'no answer in time',
  EHOSTUNREACH: 'no route to the host',
  ENETUNREACH: 'no route to the network',
  ENOTFOUND: 'unknown host name',
  EAI_AGAIN: 'the host name could not be resolved',
  ECONNRESET: 'the connection was reset',
  ESTALE: 'stale file handle',
  ENOTCONN: 'not connected',
  EHOSTDOWN: 'the server is down',
  EIO: 'input/output error',
};

/** The address of a connection error: its own fields, else the end of Node's message ("connect ECONNREFUSED h:p"). */
function addressOf(e: Low): string | null {
  if (e.address && e.port) return `${e.address}:${e.port}`;
  const m = /\b(\S+:\d+)\s*$/.exec(e.message ?? '');
  return m ? m[1] : null;
}

function serviceOf(e: Low & Tagged, tagged: ServiceTag | undefined): Service | null {
  if (tagged) return tagged.service;
  const port = e.port ?? Number(/:(\d+)\s*$/.exec(e.message ?? '')?.[1]);
  if (port === 5432) return 'postgresql';
  if (IMAP_PORTS.has(port)) return 'mail';
  return null;
}

/** The explanation of a failure, or null when it is not one we can say more about than its own message. */
export function explainError(err: unknown): ExplainedError | null {
  const links = chain(err);
  const tagged = links.map((l) => l[SERVICE]).find(Boolean);
  for (const e of links) {
    const code = e.code;
    if (e.kind === 'password' && e.location && (e.reason === 'missing' || e.reason === 'wrong')) {
      return explained(e.reason === 'missing' ? 'repository.passwordMissing' : 'repository.passwordWrong', { path: e.location });
    }
    if (e.name === 'RepositoryNotFoundError' || e.kind === 'repository-not-found') {
      return explained('repository.missing', { path: e.path ?? /at (\S+)/.exec(e.message ?? '')?.[1] ?? '?' });
    }
    if (!code) continue;
    if (NETWORK.has(code)) {
      const address = tagged?.address ?? addressOf(e) ?? '?';
      const service = serviceOf(e, tagged);
      if (code === 'ECONNREFUSED') return explained(service ? `${service}.refused` : 'service.refused', { address });
      if (service) return explained(`${service}.unreachable`, { address, reason: REASONS[code] ?? code });
      continue;
    }
    // A wrapping error (RepositoryFullError) may carry the code while its cause carries the path.
    const path = e.path ?? links.find((l) => l.path)?.path;
    switch (code) {
      case 'ENOSPC':
      case 'EDQUOT':
        return path ? explained('disk.full', { path }) : explained('disk.fullNoPath', {});
      case 'EACCES':
      case 'EPERM':
        if (path) return explained('path.permission', { path });
        break;
      case 'EROFS':
        if (path) return explained('path.readonly', { path });
        break;
      case 'ENOTDIR':
        if (path) return explained('path.notFolder', { path });
        break;
      case 'ENOENT':
        if (path) return explained('path.missing', { path });
        break;
      case 'ESTALE':
      case 'ENOTCONN':
      case 'EHOSTDOWN':
      case 'EIO':
        if (path) return explained('share.away', { path, reason: REASONS[code] });
        break;
    }
  }
  return null;
}

/** The short reason of a filesystem error code, for messages that already name what was being done. */
export function fsReason(err: unknown): string {
  const code = (err as Low | null)?.code;
  const why: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EROFS: 'the filesystem is read-only',
    ENOSPC: 'the disk is full',
    EDQUOT: 'the disk quota is exhausted',
    ENOTDIR: 'a part of the path is not a folder',
    ELOOP: 'too many symbolic links',
    ...REASONS,
  };
  return (code && why[code]) ?? (err as Error).message;
}
