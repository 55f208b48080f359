// The WebAssembly renderer: the same loops as render/js/render.ts (per group, one pass per groupMax level,
// then the outputs), but each pass handles four consecutive elements at once in v128 lanes, with
// native f32 arithmetic instead of Math.fround round trips. A scalar pass (the same body on one
// element splatted to all lanes) finishes a ragged group. Output is WAT text: readable, and turned
// into a binary by wabt (runtime/backends/js/wasm-module.ts).
//
// Bit-exactness against semantics.ts: every op maps through render/wasm/simd.ts; reductions keep
// each lane's first maximum and its element index, so combining lanes picks what a sequential
// pass in element order picks (only ±0 can tie without being bit-identical).

import type { Expr, Storage, Type } from '../../ir/ir.ts';
import { children, isGroupReduction, topo } from '../../ir/ir.ts';
import type { Output } from '../../ir/kernel.ts';
import { storageBytes } from '../../ir/kernel.ts';
import type { Prepared } from '../../ir/pipeline.ts';
import { shape } from '../shape.ts';
import * as simd from './simd.ts';
import { Facts } from './facts.ts';

export interface WasmRender {
  readonly wat: string;
  /** Bytes of per-call scratch the kernel needs at its `scr` argument: counter i's i64 total at
   * byte 8·i, then the stashes. */
  readonly scratchBytes: number;
}

type Mode = 'vector' | 'single';
/** Vectors per iteration of the main pass (2: eight elements, two interleaved chains). */
const UNROLL = 2;
type Step =
  | { k: 'def'; e: Expr; x: string }
  | { k: 'load'; e: Expr & { op: 'load' } }
  | { k: 'stashLoad'; e: Expr }
  | { k: 'stashStore'; e: Expr }
  | { k: 'gmax'; m: Expr; v: string }
  | { k: 'gsum'; m: Expr; v: string }
  | { k: 'store'; o: Output; v: string }
  | { k: 'count'; ci: number; type: Type; v: string };

const shift: Record<number, number> = { 1: 0, 2: 1, 4: 2 };
const get = (l: string) => `(local.get $${l})`;

function elementLoad(storage: Storage, addr: string, mode: Mode): string {
  const bytes = storageBytes[storage];
  if (mode === 'single') return scalarLoad(storage, addr);
  if (bytes === 4) return `(v128.load ${addr})`;
  if (bytes === 2) return `(v128.load16x4_${storage === 'i16' ? 's' : 'u'} ${addr})`;
  const s = storage === 'i8' ? 's' : 'u';
  return `(i32x4.extend_low_i16x8_${s} (i16x8.extend_low_i8x16_${s} (v128.load32_zero ${addr})))`;
}

/** One value splatted to every lane. */
function scalarLoad(storage: Storage, addr: string): string {
  switch (storage) {
    case 'f32':
    case 'i32':
    case 'u32':
      return `(v128.load32_splat ${addr})`;
    case 'u16':
    case 'i16':
      return `(i32x4.splat (i32.load16_${storage === 'i16' ? 's' : 'u'} ${addr}))`;
    case 'u8':
    case 'i8':
      return `(i32x4.splat (i32.load8_${storage === 'i8' ? 's' : 'u'} ${addr}))`;
  }
}

/** Store lane 0 (`single`) or all four lanes (`vector`), narrowing by dropping high bytes. */
function store(storage: Storage, addr: string, v: string, mode: Mode): string {
  const bytes = storageBytes[storage];
  if (mode === 'single') return `(v128.store${bytes * 8}_lane 0 ${addr} ${v})`;
  if (bytes === 4) return `(v128.store ${addr} ${v})`;
  if (bytes === 2) return `(v128.store64_lane 0 ${addr} (i8x16.shuffle 0 1 4 5 8 9 12 13 0 1 4 5 8 9 12 13 ${v} ${v}))`;
  return `(v128.store32_lane 0 ${addr} (i8x16.shuffle 0 4 8 12 0 4 8 12 0 4 8 12 0 4 8 12 ${v} ${v}))`;
}

export function renderWasm(p: Prepared, opts: { shared?: boolean } = {}): WasmRender {
  const { k, G, fs, fieldIx, column, isElem, levels, groupMaxes } = shape(p);

  const locals = new Set<string>();
  const v128 = (name: string) => {
    locals.add(name);
    return name;
  };
  const groupDone = new Set<Expr>();
  const computedIn = new Map<Expr, number>();
  const stashLoaded = new Set<string>();
  const stashed = new Set<Expr>();
  const sections: { pre: string[]; body: Step[] }[] = [];

  const addr = (field: string, axis: 'element' | 'group', storage: Storage, index: string) => {
    const sh = shift[storageBytes[storage]]!;
    return `(i32.add ${get(`f${fieldIx.get(field)}`)} ${sh ? `(i32.shl ${get(index)} (i32.const ${sh}))` : get(index)})`;
  };
  // A shift amount equal across lanes becomes the scalar operand of one SIMD shift.
  const scalarOf = (e: Expr, s: number): string =>
    e.op === 'const' ? `(i32.const ${e.value | 0})` : `(i32x4.extract_lane 0 ${ref(e, s)})`;
  const facts = new Facts();
  const isZero = (e: Expr) => e.op === 'const' && Object.is(e.value, 0);
  const plainConst = (e: Expr) => e.op === 'const' && !Number.isNaN(e.value) && e.value !== 0;
  const build = (e: Expr, s: number): string => {
    const c = children(e).map((x) => ref(x, s));
    switch (e.op) {
      // isNan/isFinite return bool; what they test depends on the operand's type.
      case 'unary':
        if (e.fn === 'isNan' && e.x.type === 'f32' && facts.notNaN(e.x)) return simd.ZERO;
        return simd.unary[e.fn](c[0]!, e.fn === 'isNan' || e.fn === 'isFinite' ? e.x.type : e.type);
      case 'binary': {
        const t = e.a.type;
        if ((e.fn === 'shl' || e.fn === 'shr') && !isElem(e.b))
          return simd.uniformShift(e.fn, c[0]!, scalarOf(e.b, s), t);
        if ((e.fn === 'min' || e.fn === 'max') && t === 'f32') {
          const p = e.fn === 'min' ? 'f32x4.pmin' : 'f32x4.pmax';
          // pmin(a, b) = b < a ? b : a is minNum exactly once `a` cannot be NaN; with a constant
          // `b` (not NaN, not ±0, so a tie means equal bits) swapping the operands is exact too.
          if (facts.notNaN(e.a)) return `(${p} ${c[0]} ${c[1]})`;
          if (plainConst(e.b)) return `(${p} ${c[1]} ${c[0]})`;
        }
        if (e.fn === 'and' && t !== 'bool') {
          if (e.b.op === 'const' && (facts.bits(e.a) & ~e.b.value) === 0) return c[0]!;
          if (e.a.op === 'const' && (facts.bits(e.b) & ~e.a.value) === 0) return c[1]!;
        }
        return simd.binary[e.fn](c[0]!, c[1]!, t);
      }
      // A select against zero is one mask operation.
      case 'select':
        if (isZero(e.b)) return `(v128.and ${c[0]} ${c[1]})`;
        if (isZero(e.a)) return `(v128.andnot ${c[2]} ${c[0]})`;
        return `(v128.bitselect ${c[1]} ${c[2]} ${c[0]})`;
      case 'cast':
        // Unsigned conversions are long instruction sequences; signed ones give the same result
        // where the value provably fits below 2^31.
        if (e.x.type === 'u32' && e.type === 'f32' && (facts.bits(e.x) & 0x80000000) === 0)
          return simd.cast(c[0]!, 'i32', 'f32');
        if (e.x.type === 'f32' && e.type === 'u32' && facts.smallNonNegative(e.x))
          return simd.cast(c[0]!, 'f32', 'i32');
        return simd.cast(c[0]!, e.x.type, e.type);
      case 'bitcast':
        return e.x.type === 'f32' && facts.notNaN(e.x) ? c[0]! : simd.bitcast(c[0]!, e.x.type);
      case 'load':
        return scalarLoad(e.storage, addr(e.field, 'group', e.storage, 'g'));
      default:
        throw new Error(`renderWasm: unexpected ${e.op}`);
    }
  };
  function ref(e: Expr, s: number): string {
    const sec = sections[s]!;
    if (e.op === 'const') return simd.constant(e.value, e.type);
    if (e.op === 'uniform') return get(`u${column.get(e.name)}`);
    if (isGroupReduction(e)) return get(`m${e.id}`);
    if (!isElem(e)) {
      if (!groupDone.has(e)) {
        const x = build(e, s);
        sec.pre.push(`(local.set $${v128(`g${e.id}`)} ${x})`);
        groupDone.add(e);
      }
      return get(`g${e.id}`);
    }
    const at = computedIn.get(e);
    const t = v128(`t${e.id}`);
    if (at === s) return get(t);
    if (at !== undefined && e.op !== 'load') {
      stashed.add(e);
      if (!stashLoaded.has(`${e.id}@${s}`)) {
        stashLoaded.add(`${e.id}@${s}`);
        sec.body.push({ k: 'stashLoad', e });
      }
      return get(t);
    }
    if (e.op === 'load') sec.body.push({ k: 'load', e });
    else sec.body.push({ k: 'def', e, x: build(e, s) });
    computedIn.set(e, s);
    return get(t);
  }

  // `ref` (and the facts it asks) recurse through what is not yet computed; calling them on those
  // nodes children first, in the recursion's own order, keeps every call shallow at any depth.
  const refDeep = (e: Expr, s: number): string => {
    const fresh = (x: Expr) =>
      !isGroupReduction(x) && x.op !== 'const' && x.op !== 'uniform' && !computedIn.has(x) && !groupDone.has(x);
    for (const n of topo([e], fresh)) {
      facts.warm(n);
      ref(n, s);
    }
    return ref(e, s);
  };

  levels.forEach((level, s) => {
    sections.push({ pre: [], body: [] });
    for (const m of level)
      sections[s]!.body.push({
        k: m.op === 'groupSum' ? 'gsum' : 'gmax',
        m,
        v: refDeep((m as Expr & { x: Expr }).x, s),
      });
  });
  const last = levels.length;
  sections.push({ pre: [], body: [] });
  const stores: Step[] = [];
  for (const o of k.outputs) if (o.axis === 'element') stores.push({ k: 'store', o, v: refDeep(o.value, last) });
  k.counters.forEach((c, ci) => stores.push({ k: 'count', ci, type: c.value.type, v: refDeep(c.value, last) }));
  for (const l of stores) sections[last]!.body.push(l);
  const post: { pre: string[]; body: Step[] } = { pre: [], body: [] };
  sections.push(post);
  const groupStores = k.outputs
    .filter((o) => o.axis === 'group')
    .map((o) => store(o.storage, addr(o.field, 'group', o.storage, 'g'), refDeep(o.value, last + 1), 'single'));
  for (const e of stashed) {
    const s = computedIn.get(e)!,
      body = sections[s]!.body;
    // Stash right after the definition, inside the same pass.
    body.splice(body.findIndex((st) => st.k === 'def' && st.e === e) + 1, 0, { k: 'stashStore', e });
  }

  // Scratch: counters' i64 totals first, then one group-sized f32/i32 array per stashed value.
  const stashAt = new Map<Expr, number>();
  let scratch = Math.ceil((k.counters.length * 8) / 16) * 16;
  for (const e of stashed) {
    stashAt.set(e, scratch);
    scratch += Math.ceil((G * 4) / 16) * 16;
  }
  const stashAddr = (e: Expr) =>
    `(i32.add ${get('scr')} (i32.add (i32.const ${stashAt.get(e)}) (i32.shl (i32.sub ${get('i')} ${get('base')}) (i32.const 2))))`;

  const emit = (st: Step, mode: Mode): string => {
    switch (st.k) {
      case 'def':
        return `(local.set $t${st.e.id} ${st.x})`;
      case 'load':
        return `(local.set $t${st.e.id} ${elementLoad(st.e.storage, addr(st.e.field, 'element', st.e.storage, 'i'), mode)})`;
      case 'stashLoad':
        return `(local.set $t${st.e.id} ${mode === 'vector' ? `(v128.load ${stashAddr(st.e)})` : `(v128.load32_splat ${stashAddr(st.e)})`})`;
      case 'stashStore':
        return mode === 'vector'
          ? `(v128.store ${stashAddr(st.e)} ${get(`t${st.e.id}`)})`
          : `(v128.store32_lane 0 ${stashAddr(st.e)} ${get(`t${st.e.id}`)})`;
      case 'gmax': {
        const m = `m${st.m.id}`,
          mi = `mi${st.m.id}`;
        // A lane takes the value when it has none yet (NaN) or the value is larger: fmax's order.
        return [
          `(local.set $take (v128.or (f32x4.ne ${get(m)} ${get(m)}) (f32x4.gt ${st.v} ${get(m)})))`,
          `(local.set $${m} (v128.bitselect ${st.v} ${get(m)} ${get('take')}))`,
          `(local.set $${mi} (v128.bitselect ${get('iv')} ${get(mi)} ${get('take')}))`,
        ].join(' ');
      }
      case 'gsum': {
        // A scalar f32 accumulator, added lane by lane: element order, as the oracle adds.
        const s = `s${st.m.id}`;
        let acc = get(s);
        for (let l = 0; l < (mode === 'vector' ? 4 : 1); l++)
          acc = `(f32.add ${acc} (f32x4.extract_lane ${l} ${st.v}))`;
        return `(local.set $${s} ${acc})`;
      }
      case 'store':
        return store(st.o.storage, addr(st.o.field, 'element', st.o.storage, 'i'), st.v, mode);
      case 'count': {
        const ext = st.type === 'i32' ? 's' : 'u';
        const v = st.type === 'bool' ? `(v128.and ${st.v} ${simd.splatI(1)})` : st.v;
        if (mode === 'single')
          return `(local.set $cs${st.ci} (i64.add ${get(`cs${st.ci}`)} (i64.extend_i32_${ext} (i32x4.extract_lane 0 ${v}))))`;
        return `(local.set $cv${st.ci} (i64x2.add ${get(`cv${st.ci}`)} (i64x2.add (i64x2.extend_low_i32x4_${ext} ${v}) (i64x2.extend_high_i32x4_${ext} ${v}))))`;
      }
    }
  };
  // A pass over the group: `copies` vectors per iteration (their statements interleaved, so
  // independent dependency chains overlap), or one element splatted to every lane.
  const pass = (body: Step[], mode: Mode, copies = 1): string[] => {
    const width = mode === 'vector' ? 4 * copies : 1,
      tag = `${mode}${copies}`;
    const rename = (text: string, c: number) =>
      c === 0
        ? text
        : text.replace(/\$(t\d+|take|iv)\b/g, `$$$1_${c}`).replace(/\(local\.get \$i\)/g, `(local.get $i_${c})`);
    const lines: string[] = [];
    for (let c = 1; c < copies; c++) lines.push(`(local.set $i_${c} (i32.add ${get('i')} (i32.const ${4 * c})))`);
    if (body.some((st) => st.k === 'gmax')) {
      lines.push(
        `(local.set $iv ${mode === 'vector' ? `(i32x4.add (i32x4.splat ${get('i')}) (v128.const i32x4 0 1 2 3))` : `(i32x4.splat ${get('i')})`})`,
      );
      for (let c = 1; c < copies; c++)
        lines.push(`(local.set $iv_${c} (i32x4.add (local.get $iv) ${simd.splatI(4 * c)}))`);
    }
    for (const st of body) {
      const text = emit(st, mode);
      for (let c = 0; c < copies; c++) lines.push(rename(text, c));
    }
    const exit =
      mode === 'vector'
        ? `(i32.gt_u (i32.add ${get('i')} (i32.const ${width})) ${get('end')})`
        : `(i32.ge_u ${get('i')} ${get('end')})`;
    return [
      `(block $x_${tag} (loop $l_${tag}`,
      `(br_if $x_${tag} ${exit})`,
      ...lines,
      `(local.set $i (i32.add ${get('i')} (i32.const ${width})))`,
      `(br $l_${tag})))`,
    ];
  };

  const S = p.columns.length;
  const out: string[] = [];
  out.push(
    `;; kernel ${k.name}: groupSize ${G}; fields ${fs.map((f, i) => `f${i}=${f.field}(${f.storage}/${f.axis})`).join(' ')}; uniforms ${p.columns.map((c, i) => `u${i}=${c}`).join(' ') || 'none'}`.replace(
      /[\r\n\u2028\u2029]/g,
      ' ',
    ),
  );
  out.push('(module');
  out.push(`  (import "env" "mem" (memory 1${opts.shared ? ' 65536 shared' : ''}))`);
  out.push('  (import "env" "exp2" (func $exp2 (param f64) (result f64)))');
  out.push('  (import "env" "log2" (func $log2 (param f64) (result f64)))');
  out.push(simd.HELPERS);
  const params = [
    ...fs.map((_, i) => `(param $f${i} i32)`),
    '(param $U i32) (param $R i32) (param $g0 i32) (param $g1 i32) (param $n i32) (param $scr i32)',
  ];
  const scalars = [
    ...['g', 'base', 'end', 'i', 'r'].map((l) => `(local $${l} i32)`),
    ...groupMaxes.filter((m) => m.op === 'groupSum').map((m) => `(local $s${m.id} f32)`),
  ].join(' ');
  for (const m of groupMaxes) {
    v128(`m${m.id}`);
    v128(`mi${m.id}`);
  }
  k.counters.forEach((_, i) => v128(`cv${i}`));
  v128('take');
  v128('iv');
  for (let j = 0; j < S; j++) v128(`u${j}`);

  const body: string[] = [];
  fs.forEach((f, i) => {
    if (k.windowed.includes(f.field))
      body.push(
        `(local.set $f${i} (i32.sub ${get(`f${i}`)} (i32.mul ${get('g0')} (i32.const ${G * storageBytes[f.storage]}))))`,
      );
  });
  body.push(
    `(local.set $g ${get('g0')})`,
    '(block $done (loop $groups',
    `(br_if $done (i32.ge_u ${get('g')} ${get('g1')}))`,
  );
  body.push(
    '(local.set $r (i32.const 0))',
    `(if ${get('R')} (then (local.set $r (i32.mul (i32.load (i32.add ${get('R')} (i32.shl ${get('g')} (i32.const 2)))) (i32.const ${S})))))`,
  );
  for (let j = 0; j < S; j++)
    body.push(
      `(local.set $u${j} (v128.load32_splat (i32.add ${get('U')} (i32.shl (i32.add ${get('r')} (i32.const ${j})) (i32.const 2)))))`,
    );
  body.push(`(local.set $base (i32.mul ${get('g')} (i32.const ${G})))`);
  body.push(
    `(local.set $end (select (i32.add ${get('base')} (i32.const ${G})) ${get('n')} (i32.lt_u (i32.add ${get('base')} (i32.const ${G})) ${get('n')})))`,
  );
  for (const m of groupMaxes)
    body.push(
      m.op === 'groupSum'
        ? `(local.set $s${m.id} (f32.const 0))`
        : `(local.set $m${m.id} ${simd.splatF(NaN)}) (local.set $mi${m.id} ${simd.ONES})`,
    );
  sections.forEach((sec, s) => {
    for (const l of sec.pre) body.push(l);
    if (sec === post) {
      for (const l of groupStores) body.push(l);
      return;
    }
    if (sec.body.length > 0)
      body.push(
        `(local.set $i ${get('base')})`,
        ...pass(sec.body, 'vector', UNROLL),
        ...pass(sec.body, 'vector'),
        ...pass(sec.body, 'single'),
      );
    for (const m of levels[s] ?? [])
      body.push(
        m.op === 'groupSum'
          ? `(local.set $m${m.id} (f32x4.splat ${get(`s${m.id}`)}))`
          : `(local.set $m${m.id} (call $gmax ${get(`m${m.id}`)} ${get(`mi${m.id}`)}))`,
      );
  });
  body.push(`(local.set $g (i32.add ${get('g')} (i32.const 1)))`, '(br $groups)))');
  k.counters.forEach((_, i) =>
    body.push(
      `(i64.store offset=${i * 8} ${get('scr')} (i64.add ${get(`cs${i}`)} (i64.add (i64x2.extract_lane 0 ${get(`cv${i}`)}) (i64x2.extract_lane 1 ${get(`cv${i}`)}))))`,
    ),
  );

  out.push(`  (func (export "run") ${params.join(' ')}`);
  out.push(`    ${scalars} ${k.counters.map((_, i) => `(local $cs${i} i64)`).join(' ')}`);
  const copies = [...locals]
    .filter((l) => /^(t\d+|take|iv)$/.test(l))
    .flatMap((l) => Array.from({ length: UNROLL - 1 }, (_, c) => `${l}_${c + 1}`));
  out.push(
    `    ${[...locals, ...copies].map((l) => `(local $${l} v128)`).join(' ')} ${Array.from({ length: UNROLL - 1 }, (_, c) => `(local $i_${c + 1} i32)`).join(' ')}`,
  );
  for (const l of body.map((l) => '    ' + l)) out.push(l);
  out.push('  )', ')');
  return { wat: out.join('\n'), scratchBytes: Math.max(16, scratch) };
}
