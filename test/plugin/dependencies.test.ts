import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// The dependency direction of docs/ARCHITECTURE.md, checked on the import lines of every non-test source file.

const ROOTS = ['server', 'plugin', 'openapi', 'ui-components/src'];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return files(p);
    return /\.ts$/.test(p) && !/\.d\.ts$/.test(p) ? [p] : [];
  });
}

interface Import {
  file: string;
  spec: string;
  typeOnly: boolean;
  /** The imported file relative to the project root (without extension change), or the package name. */
  target: string;
}

const STATIC = /^\s*(import|export)\s+(type\s+)?[^'";]*?from\s+'([^']+)'/gm;
const BARE = /^\s*import\s+'([^']+)'/gm;
const DYNAMIC = /\bimport\(\s*'([^']+)'\s*\)/g;

function parse(file: string): Import[] {
  const src = readFileSync(file, 'utf8');
  const found: { spec: string; typeOnly: boolean }[] = [
    ...[...src.matchAll(STATIC)].map((m) => ({ spec: m[3], typeOnly: !!m[2] })),
    ...[...src.matchAll(BARE)].map((m) => ({ spec: m[1], typeOnly: false })),
    ...[...src.matchAll(DYNAMIC)].map((m) => ({ spec: m[1], typeOnly: false })),
  ];
  return found.map(({ spec, typeOnly }) => {
    const target = spec.startsWith('.') ? path.relative('.', path.resolve(path.dirname(file), spec)).replace(/\.js$/, '.ts') : spec;
    return { file, spec, typeOnly, target };
  });
}

const ALL = ROOTS.flatMap(files).flatMap(parse);
const from = (...dirs: string[]) => ALL.filter((i) => dirs.some((d) => i.file.startsWith(`${d}/`)));
const local = (i: Import) => i.spec.startsWith('.');

describe('the dependency direction', () => {
  it('the scan sees imports at all', () => {
    expect(ALL.length).toBeGreaterThan(300);
    expect(from('ui-components/src').some((i) => i.spec === 'lit')).toBe(true);
    expect(from('ui-components/src').some((i) => i.target === 'openapi/client.ts' && i.typeOnly)).toBe(true);
  });

  it('the engine imports nothing from the project', () => {
    const bad = from('server/engine').filter((i) => local(i) && !i.target.startsWith('server/engine/'));
    expect(bad).toEqual([]);
  });

  it('storage backends build on the engine, never the reverse', () => {
    const bad = from('server/engine').filter((i) => i.target.startsWith('server/storage/'));
    expect(bad).toEqual([]);
    const outside = from('server/storage').filter((i) => local(i) && !i.target.startsWith('server/storage/') && !i.target.startsWith('server/engine/'));
    expect(outside).toEqual([]);
  });

  it('the store and the jobs never import the domain, and jobs build on the store (not the reverse)', () => {
    const domain = from('server/store', 'server/jobs').filter((i) => i.target.startsWith('server/dataprotect/'));
    expect(domain).toEqual([]);
    const back = from('server/store').filter((i) => i.target.startsWith('server/jobs/'));
    expect(back).toEqual([]);
  });

  it('the domain, the store and the jobs never import http', () => {
    const bad = from('server/dataprotect', 'server/store', 'server/jobs').filter((i) => i.target.startsWith('server/http/'));
    expect(bad).toEqual([]);
  });

  it('nothing imports plugin/ (it wires everything)', () => {
    const bad = from('server', 'openapi', 'ui-components/src').filter((i) => i.target.startsWith('plugin/'));
    expect(bad).toEqual([]);
  });

  it('the server never imports the UI; the UI imports only lit, ky and types from openapi/', () => {
    expect(from('server').filter((i) => i.target.startsWith('ui-components/'))).toEqual([]);
    const bad = from('ui-components/src').filter((i) => {
      if (i.target.startsWith('ui-components/')) return false;
      if (/^(lit|lit\/.*|@lit\/.*|ky)$/.test(i.spec)) return false;
      if (i.target.startsWith('openapi/') && i.typeOnly) return false;
      return true;
    });
    expect(bad).toEqual([]);
  });

  it('code outside the engine and the storage backends does not reach into a repository\'s storage', () => {
    const bad = ROOTS.flatMap(files)
      .filter((f) => !f.startsWith('server/engine/') && !f.startsWith('server/storage/'))
      .filter((f) => /\brepo(sitory)?\??\.storage\b/.test(readFileSync(f, 'utf8')));
    expect(bad).toEqual([]);
  });

  it('no cycle between files (at run time: an `import type` is erased)', () => {
    const edges = new Map<string, string[]>();
    for (const i of ALL.filter((x) => local(x) && !x.typeOnly)) edges.set(i.file, [...(edges.get(i.file) ?? []), i.target]);
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (f: string) => {
      state.set(f, 'open');
      stack.push(f);
      for (const t of edges.get(f) ?? []) {
        if (state.get(t) === 'open') cycles.push([...stack.slice(stack.indexOf(t)), t].join(' -> '));
        else if (!state.has(t)) visit(t);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of edges.keys()) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });
});
