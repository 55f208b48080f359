// The JavaScript renderer: one generated function per kernel, one pass over the arena per call.
// An outer loop over groups; per group, one inner loop per groupMax level (each reduces what the
// next needs) and a final loop that computes and stores the outputs. Values an earlier loop
// computed and a later one needs are stashed in a group-sized scratch array, not recomputed.
// f32 semantics come from Math.fround after every f32 op (double rounding is harmless for
// + − × ÷ √: 53 ≥ 2·24 + 2), bitcasts go through typed-array views.

import type { BinaryOp, Expr, Type, UnaryOp } from '../../ir/ir.ts';
import { children, isGroupReduction, topo } from '../../ir/ir.ts';
import type { Prepared } from '../../ir/pipeline.ts';
import { shape } from '../shape.ts';

type U = (x: string, t: Type) => string;
type B = (a: string, b: string, t: Type) => string;
const isInt = (t: Type) => t === 'i32' || t === 'u32';
const wrap = (t: Type, s: string) => (t === 'i32' ? `((${s}) | 0)` : t === 'u32' ? `((${s}) >>> 0)` : `fr(${s})`);

// Op tables, mapped over the op unions: an op this renderer forgets is a type error.
const unary: { [K in UnaryOp]: U } = {
  neg: (x, t) => (t === 'f32' ? `(-${x})` : `((-${x}) | 0)`),
  abs: (x, t) => (t === 'f32' ? `Math.abs(${x})` : `(Math.abs(${x}) | 0)`),
  sqrt: (x) => `fr(Math.sqrt(${x}))`,
  rsqrt: (x) => `fr(1 / Math.sqrt(${x}))`,
  exp2: (x) => `fr(2 ** ${x})`,
  log2: (x) => `fr(Math.log2(${x}))`,
  floor: (x) => `Math.floor(${x})`,
  ceil: (x) => `Math.ceil(${x})`,
  trunc: (x) => `Math.trunc(${x})`,
  roundEven: (x) => `rne(${x})`,
  roundAway: (x) => `rna(${x})`,
  sign: (x) => `(${x} > 0 ? 1 : ${x} < 0 ? -1 : ${x})`,
  not: (x, t) => (t === 'bool' ? `(!${x})` : t === 'i32' ? `(~${x})` : `((~${x}) >>> 0)`),
  isNan: (x) => `(${x} !== ${x})`,
  isFinite: (x) => `(${x} - ${x} === 0)`,
};

const logic =
  (js: string, boolJs: string): B =>
  (a, b, t) =>
    t === 'bool' ? `(${a} ${boolJs} ${b})` : wrap(t, `${a} ${js} ${b}`);
const binary: { [K in BinaryOp]: B } = {
  add: (a, b, t) => wrap(t, `${a} + ${b}`),
  sub: (a, b, t) => wrap(t, `${a} - ${b}`),
  mul: (a, b, t) => (t === 'f32' ? `fr(${a} * ${b})` : wrap(t, `Math.imul(${a}, ${b})`)),
  div: (a, b, t) => (t === 'f32' ? `fr(${a} / ${b})` : `idiv(${a}, ${b}, ${t === 'i32'})`),
  min: (a, b, t) => (isInt(t) ? `Math.min(${a}, ${b})` : `fmin(${a}, ${b})`),
  max: (a, b, t) => (isInt(t) ? `Math.max(${a}, ${b})` : `fmax(${a}, ${b})`),
  lt: (a, b) => `(${a} < ${b})`,
  le: (a, b) => `(${a} <= ${b})`,
  eq: (a, b) => `(${a} === ${b})`,
  ne: (a, b) => `(${a} !== ${b})`,
  and: logic('&', '&&'),
  or: logic('|', '||'),
  xor: logic('^', '!=='),
  shl: (a, b, t) => wrap(t, `${a} << (${b} & 31)`),
  shr: (a, b, t) => (t === 'i32' ? `(${a} >> (${b} & 31))` : `(${a} >>> (${b} & 31))`),
};

function cast(x: string, from: Type, to: Type): string {
  if (to === 'bool') return `(${x} !== 0)`;
  if (from === 'bool') return `(${x} ? 1 : 0)`;
  if (from === 'f32') return to === 'i32' ? `f2i(${x})` : `f2u(${x})`;
  return to === 'f32' ? `fr(${x})` : to === 'i32' ? `(${x} | 0)` : `(${x} >>> 0)`;
}
const view = { f32: '_f', i32: '_i', u32: '_u', bool: '_u' } as const;

export function literal(v: number, t: Type): string {
  if (t === 'bool') return v ? 'true' : 'false';
  if (Object.is(v, -0)) return '(-0)';
  if (v !== v) return 'NaN';
  return v < 0 ? `(${v})` : String(v);
}

const PRELUDE = `"use strict";
const fr = Math.fround;
const _b = new ArrayBuffer(4), _f = new Float32Array(_b), _u = new Uint32Array(_b), _i = new Int32Array(_b);
function rne(x) { const r = Math.round(x); return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r; }
function rna(x) { const r = Math.floor(Math.abs(x) + 0.5); return x < 0 || Object.is(x, -0) ? -r : r; }
function fmin(a, b) { return a !== a ? b : b < a ? b : a; }
function fmax(a, b) { return a !== a ? b : b > a ? b : a; }
function idiv(a, b, signed) { if (b === 0 || (signed && a === -2147483648 && b === -1)) return a; return signed ? Math.trunc(a / b) | 0 : Math.trunc(a / b) >>> 0; }
function f2i(x) { return x !== x ? 0 : Math.max(-2147483648, Math.min(2147483647, Math.trunc(x))) | 0; }
function f2u(x) { return x !== x ? 0 : Math.max(0, Math.min(4294967295, Math.trunc(x))); }
`;

/**
 * Elements processed per iteration of the main loop, statement by statement. Each element's update
 * is one long dependency chain (every f32 op is followed by a fround), so one element at a time
 * leaves the CPU waiting on latency; four independent chains side by side fill those gaps. The
 * lanes run the same statements in the same per-element order (reductions still see elements in
 * index order), so results are bit-identical; a scalar loop finishes a ragged group.
 */
export const LANES = 4;

function lanes(body: readonly string[]): string[] {
  const lane = (l: string, j: number) => l.replace(/\bt(\d+)\b/g, `t$1_${j}`).replace(/\bi\b/g, `i${j}`);
  const js = Array.from({ length: LANES }, (_, j) => j);
  return [
    '    { let i = base;',
    `    for (; i + ${LANES} <= end; i += ${LANES}) {`,
    '      ' + js.map((j) => `const i${j} = i + ${j};`).join(' '),
    ...body.flatMap((l) => js.map((j) => '      ' + lane(l, j))),
    '    }',
    '    for (; i < end; i++) {',
    ...body.map((l) => '      ' + l),
    '    } }',
  ];
}

/**
 * Source text of `(F, U, S, R, g0, g1, n) => counters`: F the field arrays in `fields(kernel)`
 * order, U the uniform table (rows of S columns), R the row of each group or null, [g0, g1) the
 * groups to run, n the element count (elements ≥ n are neither read nor written).
 */
export function renderJs(p: Prepared): string {
  const { k, G, fs, fieldIx, column, isElem, levels, groupMaxes } = shape(p);

  const groupDone = new Set<Expr>();
  const computedIn = new Map<Expr, number>();
  const stashed = new Set<Expr>();
  const sections: { pre: string[]; body: string[] }[] = [];

  const build = (e: Expr, r: (c: Expr) => string): string => {
    const c = children(e).map(r);
    switch (e.op) {
      case 'unary':
        return unary[e.fn](c[0]!, e.type);
      case 'binary':
        return binary[e.fn](c[0]!, c[1]!, e.a.type);
      case 'select':
        return `(${c[0]} ? ${c[1]} : ${c[2]})`;
      case 'cast':
        return cast(c[0]!, e.x.type, e.type);
      case 'bitcast':
        return e.x.type === 'f32'
          ? `(${c[0]} !== ${c[0]} ? 0x7fc00000 : (_f[0] = ${c[0]}, ${view[e.type]}[0]))`
          : `(${view[e.x.type]}[0] = ${c[0]}, ${view[e.type]}[0])`;
      case 'load':
        return `f${fieldIx.get(e.field)}[${e.axis === 'group' ? 'g' : k.windowed.includes(e.field) ? 'i - w' : 'i'}]`;
      default:
        throw new Error(`renderJs: unexpected ${e.op}`);
    }
  };
  const ref = (e: Expr, s: number): string => {
    const sec = sections[s]!;
    if (e.op === 'const') return literal(e.value, e.type);
    if (e.op === 'uniform') return `u${column.get(e.name)}`;
    if (isGroupReduction(e)) return `m${e.id}`;
    if (!isElem(e)) {
      if (!groupDone.has(e)) {
        const x = build(e, (c) => ref(c, s));
        sec.pre.push(`const g${e.id} = ${x};`);
        groupDone.add(e);
      }
      return `g${e.id}`;
    }
    const at = computedIn.get(e);
    if (at === s) return `t${e.id}`;
    if (at !== undefined && e.op !== 'load') {
      stashed.add(e);
      return e.type === 'bool' ? `(s${e.id}[i - base] === 1)` : `s${e.id}[i - base]`;
    }
    const x = build(e, (c) => ref(c, s));
    sec.body.push(`const t${e.id} = ${x};`);
    computedIn.set(e, s);
    return `t${e.id}`;
  };

  // `ref` recurses through what it has not yet computed; calling it on those nodes children first
  // (in the order the recursion would) keeps every call shallow, so any depth renders.
  const refDeep = (e: Expr, s: number): string => {
    const fresh = (x: Expr) =>
      !isGroupReduction(x) && x.op !== 'const' && x.op !== 'uniform' && !computedIn.has(x) && !groupDone.has(x);
    for (const n of topo([e], fresh)) ref(n, s);
    return ref(e, s);
  };

  levels.forEach((level, s) => {
    sections.push({ pre: [], body: [] });
    for (const m of level) {
      const v = refDeep((m as Expr & { x: Expr }).x, s);
      // A sum adds in element order (the lanes run each statement for elements i, i+1, … in turn).
      sections[s]!.body.push(
        m.op === 'groupSum'
          ? `m${m.id} = fr(m${m.id} + ${v});`
          : `if (m${m.id} !== m${m.id} || ${v} > m${m.id}) m${m.id} = ${v};`,
      );
    }
  });
  const last = levels.length;
  sections.push({ pre: [], body: [] });
  const stores: string[] = [];
  for (const o of k.outputs)
    if (o.axis === 'element') stores.push(`f${fieldIx.get(o.field)}[i] = ${refDeep(o.value, last)};`);
  k.counters.forEach((c, ci) => {
    const v = refDeep(c.value, last);
    // Counters wrap modulo 2^32 as their type (compiler/ir/kernel.ts Counter).
    stores.push(
      `c${ci} = (c${ci} + ${c.value.type === 'bool' ? `(${v} ? 1 : 0)` : v}) ${c.value.type === 'i32' ? '| 0' : '>>> 0'};`,
    );
  });
  for (const l of stores) sections[last]!.body.push(l);
  const post: { pre: string[]; body: string[] } = { pre: [], body: [] };
  sections.push(post);
  for (const o of k.outputs)
    if (o.axis === 'group') post.body.push(`f${fieldIx.get(o.field)}[g] = ${refDeep(o.value, last + 1)};`);

  const arrays = { f32: 'Float32Array', i32: 'Int32Array', u32: 'Uint32Array', bool: 'Uint8Array' } as const;
  for (const e of stashed) sections[computedIn.get(e)!]!.body.push(`s${e.id}[i - base] = t${e.id};`);

  const out: string[] = [PRELUDE];
  // Names are only ever printed in this comment; a line break in one (U+2028 included) would end
  // the comment and turn the rest of the name into code, so each becomes a space.
  out.push(
    `// kernel ${k.name}: groupSize ${G}; fields ${fs.map((f, i) => `f${i}=${f.field}(${f.storage}/${f.axis})`).join(' ')}; uniforms ${p.columns.map((c, i) => `u${i}=${c}`).join(' ') || 'none'}`.replace(
      /[\r\n\u2028\u2029]/g,
      ' ',
    ),
  );
  out.push('return function run(F, U, S, R, g0, g1, n) {');
  fs.forEach((_, i) => out.push(`  const f${i} = F[${i}];`));
  out.push(`  const w = g0 * ${G};`);
  for (const e of stashed) out.push(`  const s${e.id} = new ${arrays[e.type]}(${G});`);
  k.counters.forEach((_, i) => out.push(`  let c${i} = 0;`));
  out.push('  for (let g = g0; g < g1; g++) {');
  out.push('    const r = R === null ? 0 : R[g] * S;');
  p.columns.forEach((_, i) => out.push(`    const u${i} = U[r + ${i}];`));
  out.push(`    const base = g * ${G}, end = Math.min(base + ${G}, n);`);
  for (const m of groupMaxes) out.push(`    let m${m.id} = ${m.op === 'groupSum' ? '0' : 'NaN'};`);
  sections.forEach((sec) => {
    for (const l of sec.pre.map((l) => '    ' + l)) out.push(l);
    if (sec === post) {
      for (const l of sec.body.map((l) => '    ' + l)) out.push(l);
      return;
    }
    if (sec.body.length === 0) return;
    for (const l of lanes(sec.body)) out.push(l);
  });
  out.push('  }');
  out.push(`  return [${k.counters.map((_, i) => `c${i}`).join(', ')}];`);
  out.push('};');
  return out.join('\n');
}
