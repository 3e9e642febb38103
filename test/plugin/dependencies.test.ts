import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

// The dependency direction of ARCHITECTURE.md, checked on the import lines of the sources.

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

interface Import {
  file: string;
  spec: string;
  typeOnly: boolean;
  target: string;
}

function imports(dir: string): Import[] {
  return files(dir).flatMap((file) => {
    const src = readFileSync(file, 'utf8');
    return [...src.matchAll(/^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gm), ...src.matchAll(/^\s*import\s+'([^']+)'/gm)].map((m) => {
      const spec = m.length === 4 ? m[3] : m[1];
      const typeOnly = m.length === 4 && !!m[2];
      const target = spec.startsWith('.') ? path.relative('.', path.resolve(path.dirname(file), spec)) : spec;
      return { file, spec, typeOnly, target };
    });
  });
}

it('ui-components import only lit, ky and types from openapi/, never server/ or plugin/', () => {
  expect(imports('ui-components/src').some((i) => i.spec === 'lit')).toBe(true); // the scan sees imports at all
  expect(imports('ui-components/src').some((i) => i.target === 'openapi/client.js' && i.typeOnly)).toBe(true);
  const bad = imports('ui-components/src').filter((i) => {
    if (i.target.startsWith('ui-components/')) return false;
    if (/^(lit|lit\/.*|@lit\/.*|ky)$/.test(i.spec)) return false;
    if (i.target.startsWith('openapi/') && i.typeOnly) return false;
    return true;
  });
  expect(bad).toEqual([]);
});

it('the domain, the store and the jobs never import http', () => {
  const bad = ['server/dataprotect', 'server/store', 'server/jobs'].flatMap(imports).filter((i) => i.target.startsWith('server/http'));
  expect(bad).toEqual([]);
});

it('nothing imports plugin/ (it wires everything)', () => {
  const bad = ['server', 'openapi', 'ui-components/src'].flatMap(imports).filter((i) => i.target.startsWith('plugin/'));
  expect(bad).toEqual([]);
});

it('the server never imports the UI', () => {
  const bad = imports('server').filter((i) => i.target.startsWith('ui-components/'));
  expect(bad).toEqual([]);
});
