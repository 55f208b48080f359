// package.json's promises about dependencies: every version pinned exactly; the optional peers
// (the GPU backends' and adapters' packages) the same in package.json, in the runtime's install
// hints (runtime/backends/peers.ts) and in devDependencies (our own tests use them); and `engines`
// no wider than what every locked package accepts (npm ci warned of vega-lite 6.5's Node >= 22).

import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { peers } from '../runtime/backends/peers.ts';

interface Manifest {
  engines: { node: string };
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
  overrides: Record<string, Record<string, string>>;
}
const read = (f: string) => JSON.parse(readFileSync(new URL(`../${f}`, import.meta.url), 'utf8')) as unknown;
const pkg = read('package.json') as Manifest;
const lock = read('package-lock.json') as { packages: Record<string, { engines?: { node?: string } | string[] }> };

type Version = readonly [number, number, number];
const parse = (v: string): Version => {
  const [a = 0, b = 0, c = 0] = v.replace(/^v/, '').split('.').map(Number);
  return [a, b, c];
};
const cmp = (x: Version, y: Version) => x[0] - y[0] || x[1] - y[1] || x[2] - y[2];

/** One comparator of a node-semver range (the forms package-lock.json's engines use). */
function admits(v: Version, comparator: string): boolean {
  const m = /^(\^|~|>=|<=|>|<|=)?v?([\d*x]+(?:\.[\d*x]+){0,2})$/.exec(comparator);
  if (!m) throw new Error(`engines: cannot read the comparator ${JSON.stringify(comparator)}`);
  const op = m[1] ?? '';
  const parts = m[2]!.split('.').filter((p) => p !== '*' && p !== 'x');
  const floor = parse(parts.join('.'));
  if (op === '' || op === '=') {
    // 20, 20.x, 20.1: every version with that prefix; 1.2.3: that version.
    return parts.every((p, i) => v[i] === Number(p));
  }
  const c = cmp(v, floor);
  if (op === '>=') return c >= 0;
  if (op === '>') return c > 0;
  if (op === '<=') return c <= 0;
  if (op === '<') return c < 0;
  if (c < 0) return false;
  if (op === '~') return v[0] === floor[0] && (parts.length < 2 || v[1] === floor[1]);
  // ^: the leftmost non-zero part is fixed.
  const fixed = floor[0] !== 0 ? 1 : floor[1] !== 0 ? 2 : 3;
  return v.slice(0, fixed).every((p, i) => p === floor[i]);
}

/** Does the range (`a || b`, each a space-separated AND of comparators) admit version `v`? */
function satisfies(version: string, range: string): boolean {
  const v = parse(version);
  return range.split('||').some((alt) =>
    alt
      .trim()
      .replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1')
      .split(/\s+/)
      .every((c) => c === '' || c === '*' || admits(v, c)),
  );
}

describe('dependencies', () => {
  test('every dependency, dev dependency, peer and override is pinned to one exact version', () => {
    const exact = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;
    const all = {
      ...pkg.dependencies,
      ...pkg.devDependencies,
      ...pkg.peerDependencies,
      ...Object.values(pkg.overrides).reduce((a, o) => ({ ...a, ...o }), {}),
    };
    expect(Object.entries(all).filter(([, v]) => !exact.test(v))).toEqual([]);
  });

  test('the optional peers: in package.json, in the install hints, in devDependencies, all optional', () => {
    expect(pkg.peerDependencies).toEqual(peers);
    for (const [name, version] of Object.entries(peers)) {
      expect(pkg.devDependencies[name], `${name} in devDependencies`).toBe(version);
      expect(pkg.peerDependenciesMeta[name]?.optional, `${name} optional`).toBe(true);
      expect(pkg.dependencies[name], `${name} must not be a dependency`).toBeUndefined();
    }
  });

  test('engines: every locked package accepts every Node that package.json admits', () => {
    // The oldest and a late minor of each major our range admits, and the Node running this.
    const samples = [process.versions.node];
    for (let major = 18; major <= 30; major++) {
      const minors = [...Array(41).keys()].filter((m) => satisfies(`${major}.${m}.0`, pkg.engines.node));
      if (minors.length) samples.push(`${major}.${minors[0]}.0`, `${major}.${minors.at(-1)}.0`);
    }
    expect(samples.length).toBeGreaterThan(1);
    const refused: string[] = [];
    for (const [path, p] of Object.entries(lock.packages)) {
      const range = Array.isArray(p.engines) ? undefined : p.engines?.node;
      if (!path || !range) continue;
      for (const v of samples) if (!satisfies(v, range)) refused.push(`${path} (${range}) refuses Node ${v}`);
    }
    expect(refused).toEqual([]);
  });

  test('the range reader reads what package-lock.json writes', () => {
    expect(satisfies('20.19.0', '^20.19.0 || ^22.13.0 || >=24')).toBe(true);
    expect(satisfies('20.18.3', '^20.19.0 || ^22.13.0 || >=24')).toBe(false);
    expect(satisfies('23.1.0', '^20.19.0 || ^22.13.0 || >=24')).toBe(false);
    expect(satisfies('20.0.0', '>=22')).toBe(false);
    expect(satisfies('14.17.0', '>=16 || 14 >=14.17')).toBe(true);
    expect(satisfies('14.16.0', '>=16 || 14 >=14.17')).toBe(false);
    expect(satisfies('12.0.0', '>= 12')).toBe(true);
    expect(satisfies('11.0.0', '6.* || 8.* || >= 10.*')).toBe(true);
    expect(satisfies('7.0.0', '6.* || 8.* || >= 10.*')).toBe(false);
    expect(satisfies('0.4.1', '~0.4.0')).toBe(true);
  });
});
