// Where the reference host keeps its files, and its topology: two servers on this one machine, as in a split
// BlueMind installation (a core and a mail server), each with its own loopback address and tags.

import path from 'node:path';
import type { HostServer, Tag } from '../port.js';

export const CORE_SERVER = 'bm-master';
export const MAIL_SERVER = 'bm-mail';

export const TOPOLOGY: readonly HostServer[] = Object.freeze([
  { uid: CORE_SERVER, address: '127.0.0.1', tags: ['bm/pgsql', 'filehosting/data', 'bm/conf'] },
  { uid: MAIL_SERVER, address: '127.0.0.2', tags: ['mail/imap', 'mail/archive', 'bm/conf'] },
]);

/** Default `--host-root`. */
export const DEFAULT_HOST_ROOT = './var/host';

/** File in the host root that marks it as ours (seeding wipes data dirs only under a marked root). */
export const ROOT_MARKER = '.bm-reference-host';

export interface HostLayout {
  root: string;
  serverRoot(server: string): string;
  /** Maildir spool of the mail server: `<spool>/<domainUid>/<mailbox name>/`. */
  spool: string;
  /** Archived mail (BlueMind's HSM archive). */
  archive: string;
  filehosting: string;
  /** Configuration directory of a server (mirrors `/etc` paths: `etc/bm/bm.ini`, …). */
  conf(server: string): string;
  /** Private runtime of the reference Dovecot (config, passwd-file, pid, log): not part of any backup. */
  dovecot: string;
  /** Host secrets (administrative IMAP password), mode 0700. */
  secrets: string;
}

export function hostLayout(root: string): HostLayout {
  const abs = path.resolve(root);
  const serverRoot = (server: string) => path.join(abs, 'servers', server);
  return {
    root: abs,
    serverRoot,
    spool: path.join(serverRoot(MAIL_SERVER), 'spool'),
    archive: path.join(serverRoot(MAIL_SERVER), 'archive'),
    filehosting: path.join(serverRoot(CORE_SERVER), 'filehosting'),
    conf: (server: string) => path.join(serverRoot(server), 'conf'),
    dovecot: path.join(abs, 'dovecot'),
    secrets: path.join(abs, 'secrets'),
  };
}

/** A mailbox's archived mail: `<archive>/user|mailshare/<domainUid>/<entity uid>/`, one file per message. */
export function archiveLocation(layout: HostLayout, entity: { kind: string; domainUid: string; uid: string }): { dir: string; partPath: string } | null {
  if (entity.kind !== 'USER' && entity.kind !== 'MAILSHARE') return null;
  if ([entity.domainUid, entity.uid].some((x) => !x || x.includes('/') || x === '.' || x === '..')) return null;
  const kind = entity.kind === 'USER' ? 'user' : 'mailshare';
  return { dir: path.join(layout.archive, kind, entity.domainUid, entity.uid), partPath: `/archive/${kind}/${entity.domainUid}/${entity.uid}` };
}

/** The directories that make up each file part, per (server, tag). */
export function fileLocations(layout: HostLayout, server: string, tag: Tag): { virtualPath: string; fsPath: string }[] {
  const out: { virtualPath: string; fsPath: string }[] = [];
  if (server === MAIL_SERVER && tag === 'mail/imap') out.push({ virtualPath: '/spool', fsPath: layout.spool });
  if (server === MAIL_SERVER && tag === 'mail/archive') out.push({ virtualPath: '/archive', fsPath: layout.archive });
  if (server === CORE_SERVER && tag === 'filehosting/data') out.push({ virtualPath: '/filehosting', fsPath: layout.filehosting });
  if (tag === 'bm/conf' && TOPOLOGY.some((s) => s.uid === server)) out.push({ virtualPath: '/conf', fsPath: layout.conf(server) });
  return out;
}
