import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { BlobIndex, BlobType } from '../../server/engine/blob-index.js';
import { cutsInto, gearTable, StreamChunker } from '../../server/engine/chunker.js';
import { sha256 } from '../../server/engine/index.js';
import { DEFAULT_CONFIG } from '../../server/engine/format.js';
import { decodeIndex, encodeIndex, readIndexView } from '../../server/engine/index-file.js';
import { fromHex, isHexId } from '../../server/engine/hash.js';
import { decodeTree, decodeTreeEntry, encodeTree } from '../../server/engine/tree.js';
import { nodeProblem } from '../../server/engine/validate.js';
import { bytesOf } from './helpers.js';

const gear = gearTable(DEFAULT_CONFIG.gearSeed);
const small = { min: 64, avg: 256, max: 1024 };

describe('FastCDC chunker', () => {
  test('chunks tile the input with min <= length <= max (the last one may be shorter)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 20_000 }), (data) => {
        const cuts: number[] = [];
        cutsInto(gear, data, small, cuts);
        let start = 0;
        for (const [i, c] of cuts.entries()) {
          const len = c - start;
          expect(len).toBeLessThanOrEqual(small.max);
          if (i < cuts.length - 1) expect(len).toBeGreaterThanOrEqual(small.min);
          start = c;
        }
        expect(start).toBe(data.length);
      }),
      { numRuns: 200 },
    );
  });

  test('a stream cut in any pieces gives the same chunks as the whole', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 30 }), (seed, sizes) => {
        const data = bytesOf(seed, sizes.reduce((a, b) => a + b, 0));
        const whole: number[] = [];
        cutsInto(gear, data, small, whole);
        const sc = new StreamChunker(gear, small);
        const lens: number[] = [];
        let o = 0;
        for (const s of sizes) {
          for (const c of sc.push(data.subarray(o, o + s))) lens.push(c.length);
          o += s;
        }
        for (const c of sc.end()) lens.push(c.length);
        let p = 0;
        expect(lens.map((l) => (p += l))).toEqual(whole);
      }),
      { numRuns: 200 },
    );
  });

  test('after an insertion near the start almost every chunk is found again', () => {
    const params = DEFAULT_CONFIG.chunkers.stream;
    const data = bytesOf(5, 8 * 1024 * 1024);
    const edited = Buffer.concat([data.subarray(0, 1000), Buffer.from('inserted row'), data.subarray(1000)]);
    const ids = (buf: Buffer) => {
      const cuts: number[] = [];
      cutsInto(gear, buf, params, cuts);
      let s = 0;
      return cuts.map((c) => sha256(buf.subarray(s, (s = c))).toString('hex'));
    };
    const before = new Set(ids(data));
    const after = ids(edited);
    const reused = after.filter((id) => before.has(id)).length;
    expect(reused / after.length).toBeGreaterThan(0.99);
  });

  test('the gear table is fixed: the same seed always gives the same cut points', () => {
    const cuts: number[] = [];
    cutsInto(gearTable(0x2545f491), bytesOf(1, 100_000), small, cuts);
    expect(cuts.slice(0, 5)).toEqual(CUTS_V1);
  });
});

// Cut points of format version 1 for bytesOf(1, 100000) with min 64 / avg 256 / max 1024: changing them
// would change every blob id, so this must never change.
const CUTS_V1 = [310, 474, 866, 1069, 1572];

describe('compact blob index', () => {
  test('finds every blob after growing, and costs at most 64 bytes per blob even right after growing', () => {
    const idx = new BlobIndex();
    const n = 200_000;
    for (let i = 0; i < n; i++) {
      const id = sha256(Buffer.from(`blob ${i}`));
      idx.add(id, { pack: `pack${i % 50}`, type: i % 7 === 0 ? BlobType.Tree : BlobType.Data, zstd: i % 2 === 0, offset: i, length: i + 1, rawLength: i + 2 });
    }
    expect(idx.size).toBe(n);
    for (let i = 0; i < n; i += 997) {
      const loc = idx.get(sha256(Buffer.from(`blob ${i}`)))!;
      expect(loc).toEqual({ pack: `pack${i % 50}`, type: i % 7 === 0 ? BlobType.Tree : BlobType.Data, zstd: i % 2 === 0, offset: i, length: i + 1, rawLength: i + 2 });
    }
    expect(idx.has(sha256(Buffer.from('absent')))).toBe(false);
    expect(idx.byteSize / n).toBeLessThanOrEqual(64);
  });

  test('keeps the first location of a duplicate, moves a blob on replace, and lists blobs in the order added', () => {
    const idx = new BlobIndex();
    const a = sha256(Buffer.from('a'));
    const b = sha256(Buffer.from('b'));
    const at = (pack: string, offset: number) => ({ pack, type: BlobType.Data, zstd: true, offset, length: 10, rawLength: 20 });
    expect(idx.add(a, at('p1', 1))).toBe(true);
    expect(idx.add(b, at('p2', 2))).toBe(true);
    expect(idx.add(a, at('p3', 3))).toBe(false);
    expect(idx.size).toBe(2);
    expect(idx.packOf(a)).toBe('p1');
    idx.replace(a, at('p4', 4));
    expect(idx.get(a)).toEqual(at('p4', 4));
    expect(idx.hasPack('p4')).toBe(true);
    expect(idx.hasPack('nowhere')).toBe(false);
    expect([...idx.entries()].map(([id, loc]) => [id.equals(a) ? 'a' : 'b', loc.pack])).toEqual([['a', 'p4'], ['b', 'p2']]);
    expect(() => idx.replace(sha256(Buffer.from('c')), at('p1', 0))).toThrow(/not in the index/);
  });

  test('loads an index file from its bytes in place with the same locations as decoding it', () => {
    const blobs = Array.from({ length: 3000 }, (_, i) => ({ id: sha256(Buffer.from(`x${i}`)), type: i % 3 === 0 ? BlobType.Tree : BlobType.Data, zstd: i % 2 === 0, offset: i * 7, length: i + 1, rawLength: 2 * i + 1 }));
    const packs = [{ id: 'a'.repeat(64), blobs: blobs.slice(0, 1000) }, { id: 'b'.repeat(64), blobs: blobs.slice(1000) }];
    const file = encodeIndex({ supersedes: ['c'.repeat(64)], packs });
    const view = readIndexView('test', file);
    expect(view.supersedes).toEqual(['c'.repeat(64)]);
    const fast = new BlobIndex();
    expect(view.packs.map((p) => fast.addRecords(view.bytes, p.at, p.count, p.id))).toEqual([1000, 2000]);
    expect(fast.addRecords(view.bytes, view.packs[0].at, view.packs[0].count, 'c'.repeat(64))).toBe(0);
    const slow = new BlobIndex();
    for (const p of decodeIndex('test', file).packs) for (const e of p.blobs) slow.add(e.id, { ...e, pack: p.id });
    expect(fast.size).toBe(3000);
    for (const e of blobs) expect(fast.get(e.id)).toEqual(slow.get(e.id));
    expect(() => readIndexView('test', file.subarray(0, file.length - 5))).toThrow(/truncated/);
  });

  test('an index listing a blob twice keeps its first location, and the blobs after it keep theirs', () => {
    const [a, b, c] = ['a', 'b', 'c'].map((x) => sha256(Buffer.from(x)));
    const entry = (id: Buffer, offset: number) => ({ id, type: BlobType.Data, zstd: false, offset, length: 5, rawLength: 5 });
    const view = readIndexView('dup', encodeIndex({ supersedes: [], packs: [{ id: 'd'.repeat(64), blobs: [entry(a, 1), entry(b, 6), entry(a, 11), entry(c, 16)] }] }));
    const idx = new BlobIndex(2);
    idx.add(b, { pack: 'e'.repeat(64), type: BlobType.Tree, zstd: true, offset: 99, length: 1, rawLength: 2 });
    expect(idx.addRecords(view.bytes, view.packs[0].at, view.packs[0].count, view.packs[0].id)).toBe(2);
    expect(idx.size).toBe(3);
    expect([a, b, c].map((id) => [idx.packOf(id)!.slice(0, 1), idx.get(id)!.offset])).toEqual([['d', 1], ['e', 99], ['d', 16]]);
  });
});

describe('tree node checks (without regular expressions)', () => {
  const file = { name: 'm', type: 'file' as const, mode: 0o600, uid: 1, gid: 1, size: 0, mtime: '1700000000123456789', ctime: '-5', inode: '12', device: '2049', links: 1, content: ['a'.repeat(64)] };
  test('accepts what a backup writes, refuses what the patterns refused', () => {
    expect(nodeProblem(file)).toBeNull();
    expect(nodeProblem({ ...file, mtime: '1'.repeat(20) })).toBeNull();
    for (const mtime of ['', '-', '1'.repeat(21), '12a', '+1', ' 1', '1.5', '٣']) expect(nodeProblem({ ...file, mtime })).toMatch(/bad mtime/);
    for (const inode of ['-1', '', 'x']) expect(nodeProblem({ ...file, inode })).toMatch(/bad inode/);
    for (const id of ['A'.repeat(64), 'a'.repeat(63), 'a'.repeat(65), 'g'.repeat(64)]) expect(nodeProblem({ ...file, content: [id] })).toMatch(/not a list of blob ids/);
    expect(nodeProblem({ ...file, type: 'dir', content: undefined, subtree: 'f'.repeat(64) })).toBeNull();
    expect(nodeProblem({ ...file, type: 'dir', content: undefined, subtree: 'F'.repeat(64) })).toMatch(/subtree is not a tree id/);
    expect(isHexId('0123456789abcdef'.repeat(4))).toBe(true);
    expect(() => fromHex('0123456789ABCDEF'.repeat(4))).toThrow(/not a 64-digit hex id/);
  });

  test("one entry of a tree (a walk down to a path) is checked as the whole tree's are; the others are not", () => {
    const tree = (nodes: object[]) => encodeTree({ nodes: nodes as never });
    const id = 'f'.repeat(64);
    const raw = tree([{ ...file, name: 'a', mtime: 'bad' }, { ...file, name: 'b' }, { ...file, name: 'c' }]);
    expect(decodeTreeEntry(raw, id, 'b')).toEqual({ ...file, name: 'b' });
    expect(decodeTreeEntry(raw, id, 'x')).toBeUndefined();
    expect(() => decodeTreeEntry(raw, id, 'a')).toThrow(/entry "a": bad mtime/);
    expect(() => decodeTree(raw, id)).toThrow(/entry "a": bad mtime/);
    expect(() => decodeTreeEntry(tree([{ ...file, name: 'b' }, { ...file, name: 'b' }]), id, 'b')).toThrow(/appears twice/);
    expect(() => decodeTreeEntry(tree([{ ...file, name: 'b' }]), id, '..')).not.toThrow();
    expect(() => decodeTreeEntry(tree([{ ...file, name: '..' }]), id, '..')).toThrow(/refusing entry name/);
    expect(() => decodeTreeEntry(Buffer.from([2, 123, 125]), id, 'b')).toThrow(/format version 2/);
  });
});

describe('worker packs: the faster level for base64 bodies', () => {
  test('a base64 body is told from text and binary, and packed at level 1 it reads back the same', async () => {
    const { looksBase64, PackAssembly, releasePack, sessionSlots } = await import('../../server/engine/pack-assembly.js');
    const { default: binding } = await import('zstd-napi/binding.js');
    const bytes = Buffer.alloc(30_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) % 251;
    const body = Buffer.from(bytes.toString('base64').replace(/(.{76})/g, '$1\r\n'));
    expect(looksBase64(body)).toBe(true);
    expect(looksBase64(body.subarray(0, 4000))).toBe(false);
    expect(looksBase64(Buffer.concat([Buffer.from('Subject: hello\r\n\r\n'), body]))).toBe(false);
    expect(looksBase64(bytes)).toBe(false);
    const text = Buffer.from('Please find the figures attached. '.repeat(400));
    const packs: { body: Buffer; lengths: Uint32Array; zstd: Uint8Array }[] = [];
    let parts: Buffer[] = [];
    const assembly = new PackAssembly(new binding.CCtx(), 3, null, (m) => {
      if (m.op === 'part') {
        parts.push(Buffer.from(m.body.slice(0, m.bytes)));
        releasePack(m);
      } else {
        packs.push({ body: Buffer.concat(parts), lengths: m.lengths, zstd: m.zstd });
        parts = [];
      }
    });
    assembly.join(1, sessionSlots(1, 1 << 20));
    assembly.add(1, 1 << 20, Buffer.alloc(32, 1), body);
    assembly.add(1, 1 << 20, Buffer.alloc(32, 2), text);
    assembly.finish(1);
    expect(packs).toHaveLength(1);
    const dctx = new binding.DCtx();
    let off = 1;
    for (const [i, raw] of [body, text].entries()) {
      const stored = packs[0].body.subarray(off, off + packs[0].lengths[i]);
      off += packs[0].lengths[i];
      expect(packs[0].zstd[i]).toBe(1);
      const out = Buffer.alloc(raw.length);
      expect(dctx.decompress(out, stored)).toBe(raw.length);
      expect(out.equals(raw)).toBe(true);
    }
  });
});

describe('worker packs: a session\'s part slots shared by its workers', () => {
  test('two slots per worker and one more; a pack goes out in parts, each in a slot no unwritten part holds, freed slots taken again; a blob larger than a part spans parts', async () => {
    const { PackAssembly, releasePack, sessionSlots } = await import('../../server/engine/pack-assembly.js');
    const { PackBuilder } = await import('../../server/engine/pack.js');
    const { sha256, toHex } = await import('../../server/engine/hash.js');
    const { default: binding } = await import('zstd-napi/binding.js');
    const shared = sessionSlots(2, 4096);
    expect(shared.slots).toHaveLength(5);
    type Message = Parameters<ConstructorParameters<typeof PackAssembly>[3]>[0];
    const emitted: Message[] = [];
    // Each part's bytes as posted: its slot is filled again once freed.
    const bytes = new Map<Message, Buffer>();
    const workers = [0, 1].map((t) => new PackAssembly(new binding.CCtx(), 3, null, (m) => {
      emitted.push(m);
      if (m.op === 'part') bytes.set(m, Buffer.from(m.body.slice(0, m.bytes)));
    }, undefined, t + 1));
    for (const w of workers) w.join(7, shared);
    // Random bytes do not compress: stored raw.
    const blob = (k: number, n = 3000) => {
      let x = 2463534242 + k;
      return Buffer.from(Array.from({ length: n }, () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), x & 0xff)));
    };
    const parts = () => emitted.filter((m) => m.op === 'part');
    // Worker 0: 1 + 3000 + 3000 bytes fill its first part (4096) and go on in a second.
    workers[0].add(7, 1 << 20, Buffer.alloc(32, 1), blob(1));
    workers[0].add(7, 1 << 20, Buffer.alloc(32, 2), blob(2));
    expect(parts()).toHaveLength(1);
    workers[1].add(7, 1 << 20, Buffer.alloc(32, 3), blob(3, 9000));
    // 9,001 bytes: two full parts, the rest in a third (taken, not yet posted).
    expect(parts()).toHaveLength(3);
    expect(new Set(parts().map((p) => p.op === 'part' && p.slot)).size).toBe(3);
    // Five slots: worker 0 holds one, worker 1 one; three are being written. Freed, one is taken again.
    const first = parts()[0];
    if (first.op !== 'part') throw new Error('not a part');
    releasePack(first);
    // 4,096 bytes: the rest of worker 0's part, posted, then the freed slot.
    workers[0].add(7, 1 << 20, Buffer.alloc(32, 4), blob(4, 4096));
    expect(parts()).toHaveLength(4);
    workers[0].finish(7);
    const last = parts()[4];
    expect(last.op === 'part' && last.slot).toBe(first.slot);
    // The parts of each pack, then its end, rebuild what a pack builder makes of the same blobs, and name it.
    workers[1].finish(7);
    for (const [thread, blobs] of [[1, [blob(1), blob(2), blob(4, 4096)]], [2, [blob(3, 9000)]]] as const) {
      const mine = emitted.filter((m) => m.pack.startsWith(`${thread}.`));
      const end = mine.at(-1)!;
      if (end.op !== 'pack') throw new Error('no pack end');
      const body = Buffer.concat(mine.filter((m) => m.op === 'part').map((m) => bytes.get(m)!));
      const builder = new PackBuilder();
      blobs.forEach((b, i) => builder.add(Buffer.alloc(32, thread === 1 ? [1, 2, 4][i] : 3), 0, b, false, b.length));
      const whole = Buffer.concat(builder.finish());
      expect(Buffer.concat([body, end.header]).equals(whole)).toBe(true);
      expect(end.id).toBe(toHex(sha256(whole)));
    }
  });
});
