// The architecture as a test (docs/architecture.md): imports between folders point down only,
//   compiler/ir ← compiler/render ← compiler ← dsl ← optim ← runtime ← tfjs,
// props (the reusable properties) sits above runtime, and nothing in the library imports test/,
// bench/, examples/ or docs/. No file imports itself through a cycle, type-only imports included.
// Tests (*.test.ts, *.prop.ts) may import any layer: a compiler test builds its expressions with
// the DSL.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SKIP = new Set(['node_modules', '.git', '.device', 'out', 'dist']);

function sources(dir = root): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (SKIP.has(e.name) || e.name.startsWith('.')) return [];
    const p = join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [relative(root, p)] : [];
  });
}

/** Relative specifiers of every static import/export, side-effect import and dynamic import. */
export function importsOf(file: string, text = readFileSync(join(root, file), 'utf8')): string[] {
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]/gm),
    ...text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
    ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]!);
  return specs.filter((s) => s.startsWith('.')).map((s) => relative(root, resolve(root, dirname(file), s)));
}

/** The layer of a library file, or null for files outside the library (test, bench, examples, docs). */
export function layerOf(file: string): string | null {
  const parts = file.split('/');
  if (parts.length === 1) return file === 'index.ts' ? 'entry' : null;
  if (parts[0] === 'compiler')
    return parts[1] === 'ir' ? 'compiler/ir' : parts[1] === 'render' ? 'compiler/render' : 'compiler';
  return ['dsl', 'optim', 'runtime', 'tfjs', 'props'].includes(parts[0]!) ? parts[0]! : null;
}

/** What each layer may import (itself always). */
export const allowed: Record<string, readonly string[]> = {
  'compiler/ir': [],
  'compiler/render': ['compiler/ir'],
  compiler: ['compiler/ir', 'compiler/render'],
  dsl: ['compiler/ir', 'compiler/render', 'compiler'],
  optim: ['compiler/ir', 'compiler/render', 'compiler', 'dsl'],
  runtime: ['compiler/ir', 'compiler/render', 'compiler', 'dsl', 'optim'],
  tfjs: ['compiler/ir', 'compiler/render', 'compiler', 'dsl', 'optim', 'runtime'],
  props: ['compiler/ir', 'compiler/render', 'compiler', 'dsl', 'optim', 'runtime'],
  entry: ['compiler/ir', 'compiler/render', 'compiler', 'dsl', 'optim', 'runtime'],
};

const isTest = (f: string) => f.endsWith('.test.ts') || f.endsWith('.prop.ts');

/** Imports that break the layering, as "from → to (layer → layer)". */
export function backEdges(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const bad: string[] = [];
  for (const [from, tos] of graph) {
    const lf = layerOf(from);
    if (lf === null || isTest(from)) continue;
    for (const to of tos) {
      const lt = layerOf(to);
      if (lt === lf || (lt !== null && allowed[lf]!.includes(lt))) continue;
      bad.push(`${from} → ${to} (${lf} → ${lt ?? 'outside the library'})`);
    }
  }
  return bad;
}

/** Every import cycle (one per strongly connected component of more than one file, or a self-import). */
export function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  // Tarjan's algorithm, iterative so a deep chain cannot overflow the stack.
  const index = new Map<string, number>(),
    low = new Map<string, number>(),
    on = new Set<string>(),
    stack: string[] = [];
  const out: string[][] = [];
  let next = 0;
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work: [string, number][] = [[start, 0]];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    on.add(start);
    while (work.length) {
      const top = work[work.length - 1]!;
      const [v, i] = top;
      const succ = graph.get(v) ?? [];
      if (i < succ.length) {
        top[1]++;
        const w = succ[i]!;
        if (!graph.has(w)) continue;
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          on.add(w);
          work.push([w, 0]);
        } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length) {
        const u = work[work.length - 1]![0];
        low.set(u, Math.min(low.get(u)!, low.get(v)!));
      }
      if (low.get(v) === index.get(v)) {
        const comp: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          on.delete(w);
          comp.push(w);
        } while (w !== v);
        if (comp.length > 1 || succ.includes(v)) out.push(comp.sort());
      }
    }
  }
  return out;
}

const graph = new Map(sources().map((f) => [f, importsOf(f)] as const));

describe('architecture', () => {
  it('finds the files it checks (a walk that found nothing would pass anything)', () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(graph.get('runtime/optimizer.ts')).toContain('optim/storage.ts');
  });

  it('imports between folders point down only, and no library file imports test/, bench/ or examples/', () => {
    expect(backEdges(graph)).toEqual([]);
  });

  it('no import cycles between files, type-only imports included', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('the checks themselves catch a back edge and a cycle', () => {
    const g = new Map([
      ['compiler/ir/ir.ts', ['dsl/ops.ts']],
      ['dsl/ops.ts', ['compiler/ir/ir.ts']],
      ['runtime/session.ts', ['test/harness.ts']],
      ['test/harness.ts', []],
    ]);
    expect(backEdges(g)).toEqual([
      'compiler/ir/ir.ts → dsl/ops.ts (compiler/ir → dsl)',
      'runtime/session.ts → test/harness.ts (runtime → outside the library)',
    ]);
    expect(cycles(g)).toEqual([['compiler/ir/ir.ts', 'dsl/ops.ts']]);
  });
});
