// Fusion is substitution: every stored field of an optimizer (parameter, gradient, each state)
// has a Codec; the update sees decoded f32 values and returns new ones, which are encoded back.
// The result is one Kernel over the whole arena. The optimizer never knows how its state is
// stored, and a new codec or optimizer needs no new kernel code.
//
// Skipping, without branches: `active` is a per-row uniform (0 for a tensor that has no gradient
// this step); every stored field of an inactive row keeps its bits exactly. Inside an active row,
// an element whose gradient is NaN or ±Inf keeps its parameter bits and its state value (for a
// group-quantized state the *value* is kept and re-encoded with the group's new scale, since the
// scale is shared), and is counted in the `nonFinite` counter.

import type { Codec } from '../dsl/codec.ts';
import { loadStored, storedName } from '../dsl/codec.ts';
import type { Expr } from '../dsl/ops.ts';
import { add, and, div, globalSum, isFinite, min, mul, ne, not, select, sqrt, uniform } from '../dsl/ops.ts';
import type { Kernel, Output } from '../compiler/ir/kernel.ts';
import { kernel } from '../compiler/ir/kernel.ts';
import { children, reduce, topo, withChildren } from '../compiler/ir/ir.ts';
import { fold, simplify } from '../compiler/ir/passes.ts';
import { rewrite, rules } from '../compiler/ir/rewrite.ts';

/** Decoded inputs of the update: `p`, `g` and every state by name. */
export type Values = Readonly<Record<string, Expr>>;
/** Uniform lookup: `u('lr')` is the uniform of that name. */
export type UniformOf = (name: string) => Expr;

export interface FuseSpec {
  readonly name: string;
  readonly groupSize: number;
  readonly param: Codec;
  readonly grad: Codec;
  readonly states: Readonly<Record<string, Codec>>;
  /** Returns the new `p` and the new value of every state. */
  readonly update: (v: Values, u: UniformOf) => Values;
  /** Read the gradient from a buffer holding only the launched groups (gradient release). */
  readonly windowGrad?: boolean;
  /** Scale the gradients by min(1, c / (‖g‖ + 1e−6)), ‖g‖ the global norm of the step (torch's clip_grad_norm_). */
  readonly clipGradNorm?: number;
}

/** Elements that count in a reduction: an active row's elements with a finite gradient (as stepped). */
const counted = (g: Expr): Expr => and(ne(uniform('active'), 0), isFinite(g));

/**
 * Every reduction's argument restricted to the counted elements (the identity, 0 or −∞, elsewhere),
 * so a skipped element or a tensor without a gradient changes no norm. Nested reductions too.
 */
function maskReductions(values: readonly Expr[], g: Expr): Expr[] {
  const keep = counted(g);
  const out = new Map<Expr, Expr>();
  for (const e of topo(values)) {
    const e1 = withChildren(
      e,
      children(e).map((c) => out.get(c)!),
    );
    const done = e1.op === 'reduce' && e1.x.op === 'select' && e1.x.cond === keep; // masked already (the clip's)
    out.set(
      e,
      e1.op === 'reduce' && !done ? reduce(e1.fn, e1.scope, select(keep, e1.x, e1.fn === 'sum' ? 0 : -Infinity)) : e1,
    );
  }
  return values.map((v) => out.get(v)!);
}

/** The squared global gradient norm the clip reads (the node splitPhases lists: the runtime reports its root). */
export const gradNormSquared = (g: Expr): Expr => maskReductions([globalSum(mul(g, g))], g)[0]!;

/** torch.nn.utils.clip_grad_norm_: g · min(1, c / (‖g‖ + 1e−6)), all in f32. */
const clipped = (g: Expr, c: number): Expr => mul(g, min(1, div(c, add(sqrt(gradNormSquared(g)), 1e-6))));

export const PARAM = 'p';
export const GRAD = 'g';

export function fuse(spec: FuseSpec): Kernel {
  for (const s of Object.keys(spec.states))
    if (s === PARAM || s === GRAD || !/^[A-Za-z]\w*$/.test(s))
      throw new RangeError(`fuse ${spec.name}: state name ${JSON.stringify(s)} is reserved or not an identifier`);
  const pStored = loadStored(PARAM, spec.param);
  const g = spec.grad.decode(loadStored(GRAD, spec.grad));
  const gIn = spec.clipGradNorm === undefined ? g : clipped(g, spec.clipGradNorm);
  const old: Record<string, Expr> = { [PARAM]: spec.param.decode(pStored), [GRAD]: gIn };
  const stored: Record<string, Expr[]> = { [PARAM]: pStored };
  for (const [name, c] of Object.entries(spec.states)) {
    stored[name] = loadStored(name, c);
    old[name] = c.decode(stored[name]);
  }
  const checked = checkedUpdate(spec, old);
  const masked = maskReductions(Object.values(checked), g);
  const next: Values = Object.fromEntries(Object.keys(checked).map((k, i) => [k, masked[i]!]));
  const active = ne(uniform('active'), 0);
  const finite = isFinite(g);
  const outputs: Output[] = [];
  const emit = (base: string, c: Codec, value: Expr, valueLevel: boolean) => {
    // An element whose gradient is not finite keeps its old value (re-encoded: its group's scale
    // may change); a codec with a pre-image keeps the old stored a instead of a of the decoded value.
    const pre = valueLevel ? c.preimage : undefined;
    const enc = pre
      ? pre.encode(select(finite, pre.of(value), pre.decode(stored[base]!)))
      : c.encode(valueLevel ? select(finite, value, old[base]!) : value);
    c.fields.forEach((f, i) => {
      const prev = stored[base]![i]!;
      // Outermost, a row that sits the step out keeps every stored value: the WebGPU kernels store
      // nothing there instead of selecting (compiler/render/wgsl/stores.ts `guardedStores`).
      const elementKeep = f.axis === 'element' && !valueLevel;
      outputs.push({
        field: storedName(base, f),
        storage: f.storage,
        axis: f.axis,
        value: select(active, elementKeep ? select(finite, enc[i]!, prev) : enc[i]!, prev),
      });
    });
  };
  const needsValueLevel = (c: Codec) => c.fields.some((f) => f.axis === 'group');
  for (const base of [PARAM, ...Object.keys(spec.states)]) {
    const c = base === PARAM ? spec.param : spec.states[base]!;
    emit(base, c, next[base]!, needsValueLevel(c));
  }
  return kernel({
    name: spec.name,
    groupSize: spec.groupSize,
    outputs,
    counters: [{ name: 'nonFinite', value: and(active, not(finite)) }],
    windowed: spec.windowGrad ? spec.grad.fields.map((f) => storedName(GRAD, f)) : [],
  });
}

/**
 * Run the update on the decoded values and check what it did: reading a value that does not exist
 * (a misspelled state) is an error naming it, as is returning anything but one f32 expression for p
 * and each state, or an expression that folds to a NaN constant or divides by a constant zero.
 */
function checkedUpdate(spec: FuseSpec, old: Record<string, Expr>): Values {
  const who = `${spec.name}: the update`;
  const known = Object.keys(old);
  const values = new Proxy(old, {
    get(t, k) {
      if (typeof k === 'string' && !Object.prototype.hasOwnProperty.call(t, k))
        throw new TypeError(
          `${who} reads ${JSON.stringify(k)}, which is neither p, g nor a state (it can read ${known.join(', ')})`,
        );
      return Reflect.get(t, k);
    },
  });
  const next = spec.update(values, uniform) as unknown;
  if (next === null || typeof next !== 'object')
    throw new TypeError(`${who} must return { p, …states }, got ${String(next)}`);
  const wanted = [PARAM, ...Object.keys(spec.states)];
  for (const k of Object.keys(next))
    if (!wanted.includes(k))
      throw new RangeError(`${who} returned ${JSON.stringify(k)}, which is not p or a state (${wanted.join(', ')})`);
  const out: Record<string, Expr> = {};
  for (const k of wanted) {
    const v = (next as Record<string, unknown>)[k];
    if (v === undefined) throw new RangeError(`${who} returned no value for ${k}`);
    if (v === null || typeof v !== 'object' || typeof (v as Expr).op !== 'string')
      throw new TypeError(
        `${who} must return an expression for ${k} (build it with dsl ops), got ${typeof v === 'number' ? `the number ${v}` : String(v)}`,
      );
    if ((v as Expr).type !== 'f32') throw new TypeError(`${who}'s value for ${k} must be f32, got ${(v as Expr).type}`);
    out[k] = v as Expr;
  }
  const folded = rewrite(Object.values(out), rules(fold, simplify));
  Object.keys(out).forEach((k, i) => {
    for (const e of topo([folded[i]!])) {
      if (e.op === 'const' && e.type === 'f32' && Number.isNaN(e.value))
        throw new RangeError(
          `${who}'s value for ${k} contains a NaN constant (0/0, ∞ − ∞, or a NaN literal): every weight would become NaN`,
        );
      if (e.op === 'binary' && e.fn === 'div' && e.b.op === 'const' && e.b.value === 0)
        throw new RangeError(`${who}'s value for ${k} divides by a constant zero`);
    }
  });
  return out;
}
