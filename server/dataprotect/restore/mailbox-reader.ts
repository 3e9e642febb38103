// A mailbox as a generation saved it: its Maildir++ tree inside the `mail/imap` part, read through the engine
// without restoring anything. Folders are `.A.B` directories (IMAP `A/B`), a message is one file whose name
// carries its flags (`:2,FRS`) and whose mtime is its internal date (as Dovecot reads them). The mailbox's
// archived mail (the `mail/archive` part, one file per message) shows as one more folder, ARCHIVE_FOLDER.

import { contentDigest, findNode, readFileBytes, type Repository, type SnapshotInfo, type TreeNode } from '../../engine/index.js';
import type { MailFolder, MailMessage } from '../model.js';
import { NotFoundError } from '../errors.js';

/**
 * The folder path under which a saved mailbox lists its archived mail. `#` starts no IMAP folder name of a
 * Maildir++ mailbox (it is the namespace prefix character), so it never meets a real folder.
 */
export const ARCHIVE_FOLDER = '#archive';

/** Where archived mail goes when it is restored into a folder of a live mailbox (`restored-…/Archived mail`). */
export const ARCHIVE_IMAP_FOLDER = 'Archived mail';

/** The archived mail of a mailbox in a generation: the `mail/archive` part and the mailbox's directory in it. */
export interface SavedArchive {
  snapshot: SnapshotInfo;
  root: string;
}

export interface SavedFolder {
  /** IMAP name (`INBOX`, `Projects/2026`), or ARCHIVE_FOLDER. */
  path: string;
  /** Archived mail (read from the `mail/archive` part). */
  archived: boolean;
  /** Directory of the folder inside the snapshot. */
  dir: string;
  tree: string | undefined;
}

export interface SavedMessage {
  /** Maildir base name (unique in a mailbox, stable across flag changes). */
  id: string;
  folder: string;
  /** Path of the file inside the snapshot. */
  file: string;
  /** File name as saved (with its flags). */
  fileName: string;
  size: number;
  flags: string[];
  internalDate: Date;
  /** Equal digests, equal bytes (from the repository's blob ids: nothing is read). */
  digest: string;
  archived: boolean;
}

const FLAG_LETTERS: Record<string, string> = { D: '\\Draft', F: '\\Flagged', P: '$Forwarded', R: '\\Answered', S: '\\Seen', T: '\\Deleted' };

/** IMAP flags of a Maildir file name (`…:2,FS`); keywords (lower-case letters) need Dovecot's keyword file. */
export function maildirFlags(fileName: string): string[] {
  const i = fileName.indexOf(':2,');
  if (i < 0) return [];
  return [...fileName.slice(i + 3)].map((c) => FLAG_LETTERS[c]).filter((f): f is string => Boolean(f));
}

function baseName(fileName: string): string {
  const i = fileName.indexOf(':');
  return i < 0 ? fileName : fileName.slice(0, i);
}

/** Nanoseconds since the epoch (decimal string) to a Date. */
function nsDate(ns: string): Date {
  return new Date(Number(BigInt(ns) / 1_000_000n));
}

async function children(repo: Repository, node: TreeNode | undefined): Promise<TreeNode[]> {
  if (!node || node.type !== 'dir' || !node.subtree) return [];
  return (await repo.loadTree(node.subtree)).nodes;
}

export class SavedMailbox {
  private folderList: SavedFolder[] | null = null;

  constructor(
    readonly repo: Repository,
    readonly snapshot: SnapshotInfo,
    /** The mailbox's directory inside the part (MailboxLocation.partPath). */
    readonly root: string,
    /** Its archived mail, when the generation holds the `mail/archive` part. */
    readonly archive: SavedArchive | null = null,
  ) {}

  /** Throws NotFoundError when the generation has no such mailbox. */
  async folders(): Promise<SavedFolder[]> {
    if (this.folderList) return this.folderList;
    let root: TreeNode;
    try {
      root = await findNode(this.repo, this.snapshot, this.root);
    } catch {
      throw new NotFoundError(`the generation holds no mailbox at ${this.root}`);
    }
    const out: SavedFolder[] = [{ path: 'INBOX', archived: false, dir: this.root, tree: root.subtree }];
    for (const n of await children(this.repo, root)) {
      if (n.type !== 'dir' || !n.name.startsWith('.') || n.name === '.' || n.name === '..') continue;
      out.push({ path: n.name.slice(1).split('.').join('/'), archived: false, dir: `${this.root}/${n.name}`, tree: n.subtree });
    }
    out.sort((a, b) => (a.path === 'INBOX' ? -1 : b.path === 'INBOX' ? 1 : a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    // A mailbox that never archived anything has no directory in the archive part.
    const archived = this.archive ? await findNode(this.repo, this.archive.snapshot, this.archive.root).catch(() => null) : null;
    if (archived?.type === 'dir') out.push({ path: ARCHIVE_FOLDER, archived: true, dir: this.archive!.root, tree: archived.subtree });
    return (this.folderList = out);
  }

  async folder(path: string): Promise<SavedFolder> {
    const f = (await this.folders()).find((x) => x.path === path);
    if (!f) throw new NotFoundError(`folder ${JSON.stringify(path)} is not in the saved mailbox`);
    return f;
  }

  /** The messages of one folder (cur/ and new/; every file of the archive), oldest first. */
  async messages(folder: SavedFolder): Promise<SavedMessage[]> {
    if (folder.archived) return this.archivedMessages(folder);
    const top = folder.tree ? (await this.repo.loadTree(folder.tree)).nodes : [];
    const out: SavedMessage[] = [];
    for (const sub of ['cur', 'new']) {
      for (const n of await children(this.repo, top.find((x) => x.name === sub))) {
        if (n.type !== 'file') continue;
        out.push({
          id: baseName(n.name),
          folder: folder.path,
          file: `${folder.dir}/${sub}/${n.name}`,
          fileName: n.name,
          size: n.size,
          flags: sub === 'cur' ? maildirFlags(n.name) : [],
          internalDate: nsDate(n.mtime),
          digest: contentDigest(n),
          archived: false,
        });
      }
    }
    return out.sort((a, b) => a.internalDate.getTime() - b.internalDate.getTime() || (a.id < b.id ? -1 : 1));
  }

  /** Archived messages: every file under the mailbox's archive directory (the archive keeps no flags). */
  private async archivedMessages(folder: SavedFolder): Promise<SavedMessage[]> {
    const out: SavedMessage[] = [];
    const walk = async (tree: string | undefined, dir: string, rel: string): Promise<void> => {
      if (!tree) return;
      for (const n of (await this.repo.loadTree(tree)).nodes) {
        if (n.type === 'dir') await walk(n.subtree, `${dir}/${n.name}`, `${rel}${n.name}/`);
        else if (n.type === 'file') {
          out.push({
            id: `${rel}${n.name}`, folder: folder.path, file: `${dir}/${n.name}`, fileName: n.name, size: n.size,
            flags: [], internalDate: nsDate(n.mtime), digest: contentDigest(n), archived: true,
          });
        }
      }
    };
    await walk(folder.tree, folder.dir, '');
    return out.sort((a, b) => a.internalDate.getTime() - b.internalDate.getTime() || (a.id < b.id ? -1 : 1));
  }

  async content(m: SavedMessage): Promise<Buffer> {
    return readFileBytes(this.repo, m.archived && this.archive ? this.archive.snapshot : this.snapshot, m.file);
  }

  async summary(): Promise<MailFolder[]> {
    const out: MailFolder[] = [];
    for (const f of await this.folders()) {
      const msgs = await this.messages(f);
      out.push({ path: f.path, messages: msgs.length, size: msgs.reduce((n, m) => n + m.size, 0), ...(f.archived ? { archived: true } : {}) });
    }
    return out;
  }
}

// --- headers, for listing (subject, sender, date) -----------------------------------------------------------

function decodeWords(s: string): string {
  return s
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_all, charset: string, enc: string, text: string) => {
      try {
        const bytes = enc.toUpperCase() === 'B'
          ? Buffer.from(text, 'base64')
          : Buffer.from(text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
        return new TextDecoder(/^utf-?8$/i.test(charset) ? 'utf-8' : charset.toLowerCase()).decode(bytes);
      } catch {
        return text;
      }
    });
}

/** The top-level headers of a message (unfolded, encoded words decoded), lower-case names. */
export function parseHeaders(raw: Buffer): Record<string, string> {
  let end = raw.indexOf('\r\n\r\n');
  if (end < 0) end = raw.indexOf('\n\n');
  const head = raw.subarray(0, end < 0 ? Math.min(raw.length, 65536) : end).toString('utf8');
  const out: Record<string, string> = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    if (!(name in out)) out[name] = decodeWords(line.slice(i + 1).trim());
  }
  return out;
}

/** A saved message as the browser lists it. */
export function describeMessage(m: SavedMessage, headers: Record<string, string>): MailMessage {
  const d = headers.date ? new Date(headers.date) : m.internalDate;
  return {
    id: m.id,
    subject: headers.subject ?? '',
    from: headers.from ?? '',
    date: (Number.isNaN(d.getTime()) ? m.internalDate : d).toISOString(),
    size: m.size,
    flags: m.flags,
  };
}
