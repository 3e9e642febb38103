/**
 * Finds a file of the parent snapshot by (device, inode, size, mtime), wherever it was: Dovecot renames a
 * message file when its flags change (`...:2,S` -> `...:2,RS`) and IMAP moves between folders rename
 * it too, but the inode and mtime stay. Holds 16 bytes per parent file in typed arrays: two 32-bit
 * hashes of the key and where the node is (tree ordinal, node index); a hit is confirmed against the
 * node itself, so a hash collision can never attach the wrong content.
 */
export class RenameTable {
  private capacity = 1024;
  private mask = 1023;
  private k1 = new Int32Array(1024);
  private k2 = new Int32Array(1024);
  private tree = new Uint32Array(1024);
  private node = new Uint32Array(1024);
  private used = new Uint8Array(1024);
  private count = 0;
  readonly trees: string[] = [];

  add(device: string, inode: string, size: number, mtime: string, treeOrdinal: number, nodeIndex: number): void {
    if (this.count + 1 > this.capacity * 0.7) this.grow();
    const a = hashKey(device, inode);
    const b = hashKey(String(size), mtime);
    let s = (a ^ Math.imul(b, 0x9e3779b1)) & this.mask;
    while (this.used[s]) s = (s + 1) & this.mask;
    this.put(s, a, b, treeOrdinal, nodeIndex);
    this.count++;
  }

  /** Candidate (tree ordinal, node index) pairs for the key. */
  *find(device: string, inode: string, size: number, mtime: string): IterableIterator<[number, number]> {
    const a = hashKey(device, inode);
    const b = hashKey(String(size), mtime);
    let s = (a ^ Math.imul(b, 0x9e3779b1)) & this.mask;
    while (this.used[s]) {
      if (this.k1[s] === a && this.k2[s] === b) yield [this.tree[s], this.node[s]];
      s = (s + 1) & this.mask;
    }
  }

  get size(): number {
    return this.count;
  }

  private put(s: number, a: number, b: number, t: number, n: number): void {
    this.k1[s] = a;
    this.k2[s] = b;
    this.tree[s] = t;
    this.node[s] = n;
    this.used[s] = 1;
  }

  private grow(): void {
    const old = { k1: this.k1, k2: this.k2, tree: this.tree, node: this.node, used: this.used, cap: this.capacity };
    this.capacity *= 2;
    this.mask = this.capacity - 1;
    this.k1 = new Int32Array(this.capacity);
    this.k2 = new Int32Array(this.capacity);
    this.tree = new Uint32Array(this.capacity);
    this.node = new Uint32Array(this.capacity);
    this.used = new Uint8Array(this.capacity);
    for (let o = 0; o < old.cap; o++) {
      if (!old.used[o]) continue;
      let s = (old.k1[o] ^ Math.imul(old.k2[o], 0x9e3779b1)) & this.mask;
      while (this.used[s]) s = (s + 1) & this.mask;
      this.put(s, old.k1[o], old.k2[o], old.tree[o], old.node[o]);
    }
  }
}

/** FNV-1a over two strings. */
function hashKey(x: string, y: string): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < x.length; i++) h = Math.imul(h ^ x.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0x3a, 0x01000193);
  for (let i = 0; i < y.length; i++) h = Math.imul(h ^ y.charCodeAt(i), 0x01000193);
  return h | 0;
}
