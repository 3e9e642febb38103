import fs from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';

const C = fs.constants;

/** A restore would have left its target (a symlink or a non-directory on the way): nothing was written there. */
export class OutsideTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutsideTargetError';
  }
}

/**
 * Everything a restore creates under its target goes through here, in the main thread and in the codec
 * workers alike. Node has no openat(), so each path is resolved component by component from the target
 * down with lstat: a component on the way must be a real directory, never a symlink (a symlink where the
 * tree wants a directory is replaced by one, never followed); the last component is created with
 * O_NOFOLLOW | O_EXCL after removing what was there, so an existing symlink or hard link is never written
 * through; a new directory's realpath is checked to be inside the target. The restore itself creates
 * symlinks last, so nothing it does between the check and the use can redirect a path.
 */
export class RestoreTarget {
  /**
   * Directories already found to be real directories inside the target. The restore never turns a directory it
   * checked into anything else (symlink() and link() refuse a directory), so checking each once is enough.
   */
  private readonly verified = new Set<string>();

  private constructor(
    /** The target's real path (symlinks above the target are the administrator's choice, and resolved once). */
    readonly root: string,
  ) {}

  /** Creates the target if needed and resolves it once. */
  static open(target: string): RestoreTarget {
    fs.mkdirSync(target, { recursive: true, mode: 0o700 });
    const root = fs.realpathSync(target);
    if (!fs.statSync(root).isDirectory()) throw new OutsideTargetError(`${target} is not a directory`);
    return new RestoreTarget(root);
  }

  /** For a worker, given the root that `open` resolved. */
  static at(root: string): RestoreTarget {
    return new RestoreTarget(root);
  }

  /** The path of a restored entry, from its components below the target (names already checked by the tree decoder). */
  path(parts: readonly string[]): string {
    return parts.length ? this.root + sep + parts.join(sep) : this.root;
  }

  /** Components of `path` below the target; refuses a path that is not below it. */
  parts(path: string): string[] {
    const rel = relative(this.root, resolve(path));
    if (rel === '') return [];
    if (isAbsolute(rel) || rel === '..' || rel.startsWith(`..${sep}`)) throw new OutsideTargetError(`${path} is not inside the restore target ${this.root}`);
    return rel.split(sep);
  }

  /**
   * Every directory between the target and `path` (excluded) is a real directory, not a symlink.
   * The restore creates directories before anything inside them, so a missing or replaced one means
   * something else changed the target: refused, never created or followed here.
   */
  checkParents(path: string): void {
    // The usual case first, without path arithmetic (called for every file written): the parent, as written,
    // is a directory checked already, and the last component is a plain name.
    const cut = path.lastIndexOf(sep);
    const name = path.slice(cut + 1);
    if (cut > 0 && name !== '' && name !== '.' && name !== '..' && this.verified.has(path.slice(0, cut))) return;
    const parts = this.parts(path);
    if (parts.length < 2 || this.verified.has(this.root + sep + parts.slice(0, -1).join(sep))) return;
    let p = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      p += sep + parts[i];
      if (this.verified.has(p)) continue;
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (!st) throw new OutsideTargetError(`${p} is missing (refusing to create ${path})`);
      if (!st.isDirectory()) throw new OutsideTargetError(`${p} is ${describe(st)}, not a directory (refusing to restore through it)`);
      this.verified.add(p);
    }
  }

  /**
   * A directory (mode 0700 until the restore sets its recorded mode). A symlink in its place is removed and
   * replaced, never followed; another non-directory is refused.
   */
  makeDir(path: string): void {
    this.checkParents(path);
    const st = fs.lstatSync(path, { throwIfNoEntry: false });
    if (st?.isSymbolicLink()) fs.unlinkSync(path);
    else if (st && !st.isDirectory()) throw new OutsideTargetError(`${path} exists and is ${describe(st)} (refusing to restore a directory over it)`);
    if (!st?.isDirectory()) {
      try {
        fs.mkdirSync(path, { mode: 0o700 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    const after = fs.lstatSync(path);
    if (!after.isDirectory()) throw new OutsideTargetError(`${path} is ${describe(after)}, not a directory`);
    const real = fs.realpathSync(path);
    if (real !== path && !real.startsWith(this.root + sep)) throw new OutsideTargetError(`${path} resolves to ${real}, outside the restore target`);
    this.verified.add(path);
  }

  /**
   * A new regular file, owner-only until its recorded mode is set, open for writing. Whatever was at its
   * place (a file, a symlink, a hard link to a file elsewhere) is removed first, so it is never written through.
   */
  createFile(path: string): number {
    this.checkParents(path);
    for (let attempt = 0; ; attempt++) {
      try {
        return fs.openSync(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
        this.removeNonDir(path);
      }
    }
  }

  /** A file this restore created, reopened to write a piece of it or set its metadata: a regular file, never a symlink. */
  openFile(path: string): number {
    this.checkParents(path);
    const fd = fs.openSync(path, C.O_WRONLY | C.O_NOFOLLOW);
    if (!fs.fstatSync(fd).isFile()) {
      fs.closeSync(fd);
      throw new OutsideTargetError(`${path} is not a regular file`);
    }
    return fd;
  }

  /** A directory this restore created, opened to set its owner, mode and times without following a symlink. */
  openDir(path: string): number {
    this.checkParents(path);
    return fs.openSync(path, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
  }

  /** A hard link at `path` to the file this restore wrote at `existing`; both checked, neither followed. */
  link(existing: string, path: string): void {
    this.checkParents(existing);
    const src = fs.lstatSync(existing);
    if (!src.isFile()) throw new OutsideTargetError(`${existing} is ${describe(src)}, not the restored file to link to`);
    this.checkParents(path);
    this.removeNonDir(path);
    fs.linkSync(existing, path);
  }

  /** A symlink at `path` (what it points to is only text: it is never followed by the restore). */
  symlink(linkTarget: string, path: string): void {
    this.checkParents(path);
    this.removeNonDir(path);
    fs.symlinkSync(linkTarget, path);
  }

  /** Removes a file or symlink at `path`; a directory there is refused. Missing is fine. */
  private removeNonDir(path: string): void {
    const st = fs.lstatSync(path, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) throw new OutsideTargetError(`${path} exists and is a directory`);
    fs.unlinkSync(path);
  }
}

function describe(st: fs.Stats): string {
  return st.isSymbolicLink() ? 'a symlink' : st.isDirectory() ? 'a directory' : st.isFile() ? 'a file' : 'a special file';
}
