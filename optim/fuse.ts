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
import { and, isFinite, ne, not, select, uniform } from '../dsl/ops.ts';
import type { Kernel, Output } from '../compiler/ir/kernel.ts';
import { kernel } from '../compiler/ir/kernel.ts';

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
}

export const PARAM = 'p';
export const GRAD = 'g';

export function fuse(spec: FuseSpec): Kernel {
  for (const s of Object.keys(spec.states))
    if (s === PARAM || s === GRAD || !/^[A-Za-z]\w*$/.test(s))
      throw new RangeError(`fuse ${spec.name}: state name ${JSON.stringify(s)} is reserved or not an identifier`);
  const pStored = loadStored(PARAM, spec.param);
  const g = spec.grad.decode(loadStored(GRAD, spec.grad));
  const old: Record<string, Expr> = { [PARAM]: spec.param.decode(pStored), [GRAD]: g };
  const stored: Record<string, Expr[]> = { [PARAM]: pStored };
  for (const [name, c] of Object.entries(spec.states)) {
    stored[name] = loadStored(name, c);
    old[name] = c.decode(stored[name]);
  }
  const next = spec.update(old, uniform);
  const active = ne(uniform('active'), 0);
  const finite = isFinite(g);
  const keepElement = and(active, finite);
  const outputs: Output[] = [];
  const emit = (base: string, c: Codec, value: Expr, valueLevel: boolean) => {
    const enc = c.encode(valueLevel ? select(finite, value, old[base]!) : value);
    c.fields.forEach((f, i) => {
      const prev = stored[base]![i]!;
      const keep = f.axis === 'group' ? active : valueLevel ? active : keepElement;
      outputs.push({
        field: storedName(base, f),
        storage: f.storage,
        axis: f.axis,
        value: select(keep, enc[i]!, prev),
      });
    });
  };
  const needsValueLevel = (c: Codec) => c.fields.some((f) => f.axis === 'group');
  for (const base of [PARAM, ...Object.keys(spec.states)]) {
    const v = next[base];
    if (!v) throw new RangeError(`fuse ${spec.name}: update returned no value for ${base}`);
    if (v.type !== 'f32') throw new TypeError(`fuse ${spec.name}: update value for ${base} must be f32, got ${v.type}`);
    const c = base === PARAM ? spec.param : spec.states[base]!;
    emit(base, c, v, needsValueLevel(c));
  }
  return kernel({
    name: spec.name,
    groupSize: spec.groupSize,
    outputs,
    counters: [{ name: 'nonFinite', value: and(active, not(finite)) }],
    windowed: spec.windowGrad ? spec.grad.fields.map((f) => storedName(GRAD, f)) : [],
  });
}
