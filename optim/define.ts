// defineOptimizer: an optimizer is data. Hyperparameters with defaults and validation, a codec
// choice per state (`momentum()`, `variance()`, `f32()`, or any Codec), host-side uniforms
// (computed in float64 per tensor and step, then rounded to f32), and a pure elementwise update
// written in the DSL. The compiler fuses it with the codecs into one kernel.

import type { UniformOf, Values } from './fuse.ts';
import type { Codec } from '../dsl/codec.ts';
import type { Expr, Like } from '../dsl/ops.ts';
import { add, mul, sub } from '../dsl/ops.ts';
import { f32Codec, masterCodec } from '../dsl/master.ts';
import type { ScaleStorage } from '../dsl/quant.ts';
import { momentumCodec, varianceCodec } from '../dsl/quant.ts';

export type HyperValue = number | boolean | readonly number[];
export type Hyper = Readonly<Record<string, HyperValue>>;

/** What a state's codec may depend on: the optimizer's storage options. */
export interface StorageChoice {
  readonly quantize: boolean;
  readonly scale: ScaleStorage;
  /** The parameter's own storage, used for unquantized states (as the reference does). */
  readonly paramDtype: 'bf16' | 'f32';
}
export type StateSpec = (s: StorageChoice) => Codec;

/**
 * How one state's group scales are stored, whatever the optimizer's `scale` option says. 'f32'
 * suits a state that moves by less than a bf16 rounding step of its group maximum per step (an
 * EMA with β ≥ 0.99, a running sum): the maximum then decodes to exactly itself (docs/optimizers.md).
 */
export interface StateCodecOptions {
  readonly scale?: ScaleStorage;
}
/** Signed int8 with softsign companding (quantized), else the parameter's dtype. */
export const momentum =
  (o: StateCodecOptions = {}): StateSpec =>
  (s) =>
    s.quantize ? momentumCodec(o.scale ?? s.scale) : plain(s);
/** Unsigned uint8 of √v (quantized), else the parameter's dtype. */
export const variance =
  (o: StateCodecOptions = {}): StateSpec =>
  (s) =>
    s.quantize ? varianceCodec(o.scale ?? s.scale) : plain(s);
/** Always f32 (4 bytes). */
export const f32 = (): StateSpec => () => f32Codec;
/** Any codec, user-defined ones included. */
export const custom =
  (c: Codec): StateSpec =>
  () =>
    c;
const plain = (s: StorageChoice): Codec =>
  s.paramDtype === 'f32' ? f32Codec : masterCodec({ narrow: 'bf16', bits: null });

/** Context of host-side uniforms: the optimizer's initial lr (for decoupleLr) and the step. */
export interface UniformContext {
  readonly step: number;
  readonly initialLr: number;
}

export interface OptimizerSpec<H extends Hyper> {
  readonly name: string;
  readonly hyper: H;
  /** Throw a RangeError naming the field and value; the common checks (lr ≥ 0, …) run first. */
  validate?(h: H): void;
  readonly state:
    | Readonly<Record<string, StateSpec>>
    | { bivarianceHack(h: H): Readonly<Record<string, StateSpec>> }['bivarianceHack'];
  /**
   * Extra uniforms computed on the host in float64 (bias corrections, decay factors). A pure
   * function of its arguments: a launch calls it once per group and step count, not per tensor.
   */
  uniforms?(h: H, c: UniformContext): Readonly<Record<string, number>>;
  /** The update: decoded p, g and states in, new p and states out. Booleans in `h` are baked in. */
  update(v: Values, u: UniformOf, h: H): Values;
  /** Numerics check: the update is about lr·k (k = 0.1 for Adam-like, 1 for sign/SGD). */
  readonly numericsK?: number;
}

export interface OptimizerDef<H extends Hyper = Hyper> {
  readonly name: string;
  readonly hyper: H;
  readonly states: Readonly<Record<string, StateSpec>>;
  /** Every uniform of one tensor row (hyperparameters flattened: betas → betas0, betas1). */
  uniforms(h: H, c: UniformContext): Record<string, number>;
  update(v: Values, u: UniformOf): Values;
  /** Baked-in choices: two defs with equal keys compile to the same kernel. */
  readonly structure: string;
  readonly numericsK: number;
  /** The same optimizer with other hyperparameters (validated). */
  with(h: Partial<H>): OptimizerDef<H>;
  readonly spec: OptimizerSpec<H>;
}

export class HyperError extends RangeError {}

const num = (v: unknown): v is number => typeof v === 'number';

/** A value as an error message shows it: NaN as NaN (JSON would say null), strings quoted. */
export function shown(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(shown).join(', ')}]`;
  if (v === null || v === undefined) return String(v);
  return typeof v === 'function' ? 'a function' : `a ${(v as object).constructor?.name ?? 'object'}`;
}

function check<H extends Hyper>(spec: OptimizerSpec<H>, h: H): void {
  for (const [k, v] of Object.entries(h)) {
    const d = spec.hyper[k];
    if (d === undefined)
      throw new HyperError(`${spec.name}: unknown hyperparameter ${k} (known: ${Object.keys(spec.hyper).join(', ')})`);
    // Every number finite: an infinite lr or decay turns every weight into NaN or ±Inf in one step.
    const ok = Array.isArray(d)
      ? Array.isArray(v) && v.length === d.length && v.every((x) => num(x) && Number.isFinite(x))
      : typeof v === typeof d && (!num(v) || Number.isFinite(v));
    if (!ok)
      throw new HyperError(
        `${spec.name}: ${k} must be ${Array.isArray(d) ? `${d.length} finite numbers` : typeof d === 'number' ? 'a finite number' : `a ${typeof d}`}, got ${shown(v)}`,
      );
  }
  const lr = h['lr'],
    wd = h['weightDecay'],
    eps = h['eps'];
  if (num(lr) && !(lr >= 0)) throw new HyperError(`${spec.name}: lr must be >= 0, got ${shown(lr)}`);
  if (num(wd) && !(wd >= 0)) throw new HyperError(`${spec.name}: weightDecay must be >= 0, got ${shown(wd)}`);
  // ε keeps a zero second moment from dividing by zero.
  if (num(eps) && !(eps > 0)) throw new HyperError(`${spec.name}: eps must be > 0, got ${shown(eps)}`);
  spec.validate?.(h);
}

/** Define an optimizer; returns a factory `(hyper?) => OptimizerDef` with defaults filled in. */
export function defineOptimizer<H extends Hyper>(spec: OptimizerSpec<H>): (h?: Partial<H>) => OptimizerDef<H> {
  const make = (over: Partial<H> = {}): OptimizerDef<H> => {
    const h = { ...spec.hyper, ...over } as H;
    check(spec, h);
    const states = typeof spec.state === 'function' ? spec.state(h) : spec.state;
    const structure = [
      spec.name,
      ...Object.entries(h)
        .filter(([, v]) => typeof v === 'boolean')
        .map(([k, v]) => `${k}=${v}`),
      ...Object.keys(states),
    ].join(';');
    return {
      name: spec.name,
      hyper: h,
      states,
      structure,
      spec,
      numericsK: spec.numericsK ?? 1,
      uniforms: (hh, c) => {
        const out: Record<string, number> = { step: c.step };
        for (const [k, v] of Object.entries(hh)) {
          if (num(v)) out[k] = v;
          else if (Array.isArray(v))
            v.forEach((x, i) => {
              out[`${k}${i}`] = x;
            });
        }
        return { ...out, ...spec.uniforms?.(hh, c) };
      },
      update: (v, u) => spec.update(v, u, h),
      with: (more) => make({ ...over, ...more }),
    };
  };
  return make;
}

/**
 * Exponential moving average β·old + (1 − β)·x, the building block of most optimizers. Pass
 * `oneMinusBeta` as a host-computed uniform: 1 − f32(0.999) in f32 is off by 1.3e−5 relative, while
 * f32(1 − 0.999) computed in float64 is exact to half an ulp (torch does the same).
 */
export const ema = (old: Like, x: Like, beta: Like, oneMinusBeta: Like = sub(1, beta)): Expr =>
  add(mul(beta, old), mul(oneMinusBeta, x));

/**
 * The decoupled weight-decay factor 1 − λ_eff of one step: λ_eff = λ·η, or λ·η/η0 with
 * `decoupleLr` (η0 the optimizer's initial lr; 0 when η0 is 0). Computed on the host in float64.
 */
export function decayFactor(
  h: { readonly lr: number; readonly weightDecay: number; readonly decoupleLr: boolean },
  c: UniformContext,
): number {
  const lamEff = h.decoupleLr ? (c.initialLr > 0 ? (h.weightDecay * h.lr) / c.initialLr : 0) : h.weightDecay * h.lr;
  return 1 - lamEff;
}

/**
 * Validate a decay rate (a β, a momentum, a dampening) or each entry of a tuple of them: in [0, 1).
 * 1 never forgets (Adam's bias correction 1 − β^t is then 0, and SGD's momentum grows without bound).
 */
export function unitInterval(name: string, key: string, v: number | readonly number[]): void {
  const each = typeof v === 'number' ? [[key, v] as const] : v.map((b, i) => [`${key}[${i}]`, b] as const);
  for (const [k, b] of each)
    if (!(b >= 0 && b < 1)) throw new HyperError(`${name}: ${k} must be in [0, 1), got ${shown(b)}`);
}
