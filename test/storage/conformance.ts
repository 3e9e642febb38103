import { describe, expect, test } from 'vitest';
import type { FileType, Storage } from '../../server/engine/index.js';

/**
 * What every storage backend must do. A backend's test file calls this with a factory that gives a
 * fresh, empty storage (local directory, in memory; S3 later).
 */
export function storageConformance(name: string, make: () => Promise<{ storage: Storage; cleanup: () => Promise<void> }>): void {
  const hex = (c: string) => c.repeat(64);
  describe(`storage conformance: ${name}`, () => {
    const withStorage = (fn: (s: Storage) => Promise<void>) => async () => {
      const { storage, cleanup } = await make();
      try {
        await fn(storage);
      } finally {
        await cleanup();
      }
    };

    test('a written file reads back whole, and by range', withStorage(async (s) => {
      const data = Buffer.from('0123456789abcdefghij');
      await s.write('data', hex('a'), data);
      expect((await s.read('data', hex('a'))).equals(data)).toBe(true);
      expect((await s.read('data', hex('a'), 5, 3)).toString()).toBe('567');
      expect((await s.read('data', hex('a'), 19, 1)).toString()).toBe('j');
    }));

    test('writing several parts stores their concatenation', withStorage(async (s) => {
      await s.write('index', hex('b'), [Buffer.from('ab'), Buffer.from(''), Buffer.from('cd')]);
      expect((await s.read('index', hex('b'))).toString()).toBe('abcd');
    }));

    test('a file written in parts is their concatenation once committed, and nothing before', withStorage(async (s) => {
      const parts = s.writeParts('data');
      const part = Buffer.from('0123');
      await parts.append(part);
      // The caller reuses a part's memory once its append resolved.
      part.write('abcd');
      await parts.append([part, Buffer.from(''), Buffer.from('xy')]);
      const listed = async () => {
        const names: string[] = [];
        for await (const f of s.list('data')) names.push(f.name);
        return names;
      };
      expect(await listed()).toEqual([]);
      expect(await s.stat('data', hex('7'))).toBeNull();
      await parts.commit(hex('7'));
      expect((await s.read('data', hex('7'))).toString()).toBe('0123abcdxy');
      expect(await s.stat('data', hex('7'))).toEqual({ name: hex('7'), size: 10 });
      expect(await listed()).toEqual([hex('7')]);
    }));

    test('a file written in parts and aborted leaves nothing; two written at once do not mix', withStorage(async (s) => {
      const dropped = s.writeParts('data');
      await dropped.append(Buffer.alloc(1000, 1));
      const a = s.writeParts('data');
      const b = s.writeParts('data');
      for (let i = 0; i < 3; i++) {
        await a.append(Buffer.alloc(100, 'a'));
        await b.append(Buffer.alloc(50, 'b'));
      }
      await dropped.abort();
      await Promise.all([a.commit(hex('8')), b.commit(hex('9'))]);
      expect((await s.read('data', hex('8'))).equals(Buffer.alloc(300, 'a'))).toBe(true);
      expect((await s.read('data', hex('9'))).equals(Buffer.alloc(150, 'b'))).toBe(true);
      const names: string[] = [];
      for await (const f of s.list('data')) names.push(f.name);
      expect(names.sort()).toEqual([hex('8'), hex('9')]);
      expect((await s.removeStaleTempFiles?.()) ?? 0).toBe(0);
    }));

    test('reading past the end fails and says the file is truncated', withStorage(async (s) => {
      await s.write('snapshot', hex('c'), Buffer.from('short'));
      await expect(s.read('snapshot', hex('c'), 2, 10)).rejects.toThrow(/truncated/);
    }));

    test('reading a missing file fails with ENOENT', withStorage(async (s) => {
      await expect(s.read('snapshot', hex('9'))).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(s.read('config', 'config')).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(s.read('reference', 'latest')).rejects.toMatchObject({ code: 'ENOENT' });
    }));

    test('stat gives the size, or null for a missing file', withStorage(async (s) => {
      await s.write('data', hex('d'), Buffer.alloc(1234));
      expect(await s.stat('data', hex('d'))).toEqual({ name: hex('d'), size: 1234 });
      expect(await s.stat('data', hex('e'))).toBeNull();
    }));

    test('list gives every file of a type and only of that type', withStorage(async (s) => {
      const types: FileType[] = ['data', 'index', 'snapshot', 'lock', 'reference'];
      await s.write('config', 'config', Buffer.from('cfg'));
      for (const [i, t] of types.entries()) {
        await s.write(t, hex(String(i)), Buffer.from(t));
        await s.write(t, hex(String(i + 5)), Buffer.from(t + t));
      }
      for (const [i, t] of types.entries()) {
        const names: { name: string; size: number }[] = [];
        for await (const f of s.list(t)) names.push(f);
        expect(names.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
          { name: hex(String(i)), size: t.length },
          { name: hex(String(i + 5)), size: 2 * t.length },
        ]);
      }
    }));

    test('delete removes a file; deleting a missing file is not an error', withStorage(async (s) => {
      await s.write('data', hex('f'), Buffer.from('x'));
      await s.delete('data', hex('f'));
      expect(await s.stat('data', hex('f'))).toBeNull();
      await s.delete('data', hex('f'));
      const left: string[] = [];
      for await (const f of s.list('data')) left.push(f.name);
      expect(left).toEqual([]);
    }));

    test('the config file is one file with a fixed name', withStorage(async (s) => {
      await s.write('config', 'config', Buffer.from('cfg'));
      expect((await s.read('config', 'config')).toString()).toBe('cfg');
      const all: string[] = [];
      for await (const f of s.list('config')) all.push(f.name);
      expect(all).toEqual(['config']);
    }));

    test('a lock can be rewritten in place', withStorage(async (s) => {
      await s.write('lock', hex('1'), Buffer.from('one'));
      await s.write('lock', hex('1'), Buffer.from('two!'));
      expect((await s.read('lock', hex('1'))).toString()).toBe('two!');
    }));

    test('a reference is rewritten whole, read back, and deleted', withStorage(async (s) => {
      expect(await s.stat('reference', 'latest')).toBeNull();
      await s.write('reference', 'latest', Buffer.from('{"generation":"one"}'));
      await s.write('reference', 'latest', [Buffer.from('{"generation":'), Buffer.from('"two"}')]);
      expect((await s.read('reference', 'latest')).toString()).toBe('{"generation":"two"}');
      expect(await s.stat('reference', 'latest')).toEqual({ name: 'latest', size: 20 });
      const names: string[] = [];
      for await (const f of s.list('reference')) names.push(f.name);
      expect(names).toEqual(['latest']);
      await s.delete('reference', 'latest');
      expect(await s.stat('reference', 'latest')).toBeNull();
    }));

    test('a reference cannot take the name of the config file', withStorage(async (s) => {
      await s.write('config', 'config', Buffer.from('cfg'));
      await expect(s.write('reference', 'config', Buffer.from('x'))).rejects.toThrow(/invalid/);
      expect((await s.read('config', 'config')).toString()).toBe('cfg');
    }));

    test('many concurrent writes all land whole', withStorage(async (s) => {
      const n = 40;
      await Promise.all(Array.from({ length: n }, (_, i) => s.write('data', i.toString(16).padStart(64, '0'), Buffer.alloc(10_000 + i, i))));
      let count = 0;
      for await (const f of s.list('data')) {
        const i = parseInt(f.name, 16);
        expect(f.size).toBe(10_000 + i);
        count++;
      }
      expect(count).toBe(n);
    }));

    test('reading a missing file fails with code ENOENT, which the engine reads as "not there"', withStorage(async (s) => {
      await expect(s.read('config', 'config')).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(s.read('snapshot', hex('9'), 0, 10)).rejects.toMatchObject({ code: 'ENOENT' });
    }));

    test('an empty storage lists nothing and has no config', withStorage(async (s) => {
      for (const t of ['config', 'data', 'index', 'snapshot', 'lock'] as FileType[]) {
        const names: string[] = [];
        for await (const f of s.list(t)) names.push(f.name);
        expect(names).toEqual([]);
      }
      expect(await s.stat('config', 'config')).toBeNull();
    }));

    test('a name that is not a plain file name is refused', withStorage(async (s) => {
      await expect(s.write('data', '../escape', Buffer.from('x'))).rejects.toThrow(/invalid/);
      await expect(s.read('index', 'a/b')).rejects.toThrow(/invalid/);
      await expect(s.write('reference', '.hidden', Buffer.from('x'))).rejects.toThrow(/invalid/);
    }));
  });
}
