// createOptimizer: bind an optimizer definition to named tensors. The arena holds every stored
// field; a step writes the gradients, builds the uniform table (one row per tensor, computed on
// the host in float64) and launches ONE fused kernel over all groups. Nothing recompiles when
// hyperparameters change: they are uniforms.

import type { FieldArray } from '../compiler/render/js/compile.ts';
import { buildUniformTable } from '../compiler/render/js/compile.ts';
import { fuse, GRAD, PARAM } from '../optim/fuse.ts';
import type { Kernel } from '../compiler/ir/kernel.ts';
import type { Codec } from '../dsl/codec.ts';
import { f32Codec, masterCodec } from '../dsl/master.ts';
import type { ScaleStorage } from '../dsl/quant.ts';
import type { Hyper, OptimizerDef } from '../optim/define.ts';
import type { Backend, DeviceBuffer, Program } from './backends/backend.ts';
import { JsBackend } from './backends/js/js.ts';
import type { FieldSlot, Layout } from './arena.ts';
import { allocate, fieldSlots, layout } from './arena.ts';
import { Session } from './session.ts';

export interface OptimizerOptions<H extends Hyper = Hyper> {
  /** 24 (int8 correction, default), 32 (int16) or null (the narrow value alone). */
  readonly masterWeightBits?: 24 | 32 | null;
  /** Parameter storage: 'bf16' (default, with the correction) or 'f32' (full precision, no correction). */
  readonly paramDtype?: 'bf16' | 'f32';
  /** 8-bit companded states (default) or states in the parameter's dtype. */
  readonly quantize?: boolean;
  readonly groupSize?: number;
  readonly scale?: ScaleStorage;
  /** Gradient storage: 'bf16' (default; Float32Array gradients are rounded to bf16) or 'f32'. */
  readonly gradDtype?: 'bf16' | 'f32';
  /** Parameter groups: per-group hyperparameters (e.g. no weight decay on biases and norms). */
  readonly groups?: readonly { readonly params: readonly string[]; readonly hyper: Partial<H> }[];
  /** A schedule: hyperparameters as a function of the step (applied before each step). */
  readonly schedule?: (step: number) => Partial<H>;
  /** 'skip' (default): count non-finite gradient elements and leave them out; 'error': also throw. */
  readonly onNonFinite?: 'skip' | 'error';
  /** Throw NumericsError when lr is too small to move the largest weights (spec §4.4, 0.49 ULP). */
  readonly checkNumerics?: boolean;
  /** Gradient release: only stepTensor(), no arena-sized gradient buffer. */
  readonly gradientRelease?: boolean;
  readonly backend?: 'js' | Backend;
}

export type ParamInput = Float32Array | Uint16Array | { readonly data: Float32Array | Uint16Array; readonly shape: readonly number[] };
export type GradInput = Float32Array | Uint16Array;

export interface Resolved {
  readonly masterWeightBits: 24 | 32 | null;
  readonly paramDtype: 'bf16' | 'f32';
  readonly quantize: boolean;
  readonly groupSize: number;
  readonly scale: ScaleStorage;
  readonly gradDtype: 'bf16' | 'f32';
  readonly onNonFinite: 'skip' | 'error';
  readonly checkNumerics: boolean;
  readonly gradientRelease: boolean;
}

function resolve(o: OptimizerOptions<Hyper>): Resolved {
  const paramDtype = o.paramDtype ?? 'bf16';
  const bits = o.masterWeightBits === undefined ? (paramDtype === 'f32' ? null : 24) : o.masterWeightBits;
  const oneOf = <T>(name: string, v: T, allowed: readonly T[]) => {
    if (!allowed.includes(v)) throw new RangeError(`createOptimizer: ${name} must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(v)}`);
    return v;
  };
  oneOf('paramDtype', paramDtype, ['bf16', 'f32'] as const);
  oneOf('masterWeightBits', bits, [24, 32, null] as const);
  if (paramDtype === 'f32' && bits !== null)
    throw new RangeError(`createOptimizer: masterWeightBits ${bits} has no effect on f32 parameters (the reference raises too); use null`);
  const groupSize = o.groupSize ?? 32;
  if (!Number.isInteger(groupSize) || groupSize < 1 || groupSize > 4096) throw new RangeError(`createOptimizer: groupSize must be an integer in [1, 4096], got ${groupSize}`);
  return {
    masterWeightBits: bits, paramDtype, groupSize,
    quantize: o.quantize ?? true,
    scale: oneOf('scale', o.scale ?? 'bf16', ['bf16', 'fp16', 'f32'] as const),
    gradDtype: oneOf('gradDtype', o.gradDtype ?? 'bf16', ['bf16', 'f32'] as const),
    onNonFinite: oneOf('onNonFinite', o.onNonFinite ?? 'skip', ['skip', 'error'] as const),
    checkNumerics: o.checkNumerics ?? false,
    gradientRelease: o.gradientRelease ?? false,
  };
}

export interface Codecs { readonly param: Codec; readonly grad: Codec; readonly states: Record<string, Codec> }

export function codecsFor<H extends Hyper>(def: OptimizerDef<H>, r: Resolved): Codecs {
  const param = r.paramDtype === 'f32' ? f32Codec : masterCodec({ narrow: 'bf16', bits: r.masterWeightBits });
  const grad = r.gradDtype === 'f32' ? f32Codec : masterCodec({ narrow: 'bf16', bits: null });
  const states = Object.fromEntries(Object.entries(def.states).map(([k, s]) => [k, s({ quantize: r.quantize, scale: r.scale, paramDtype: r.paramDtype })]));
  return { param, grad, states };
}

/** The fused kernel of an optimizer under the given options (what every backend compiles). */
export function fusedKernel<H extends Hyper>(def: OptimizerDef<H>, opts: OptimizerOptions<H> = {}, windowGrad = false): Kernel {
  const r = resolve(opts as OptimizerOptions<Hyper>);
  const c = codecsFor(def, r);
  return fuse({ name: `${def.name}`, groupSize: r.groupSize, param: c.param, grad: c.grad, states: c.states, update: (v, u) => def.update(v, u), windowGrad });
}

function asEntry(name: string, p: ParamInput): { name: string; data: Float32Array | Uint16Array; shape: number[] } {
  const data = p instanceof Float32Array || p instanceof Uint16Array ? p : p?.data;
  if (!(data instanceof Float32Array || data instanceof Uint16Array))
    throw new TypeError(`createOptimizer: param ${name} must be a Float32Array, a Uint16Array (bf16 bits) or { data, shape }, got ${p?.constructor?.name ?? typeof p}`);
  const shape = p instanceof Float32Array || p instanceof Uint16Array ? [data.length] : [...p.shape];
  if (shape.reduce((a, b) => a * b, 1) !== data.length) throw new RangeError(`createOptimizer: param ${name} has shape [${shape}] but ${data.length} values`);
  return { name, data, shape };
}

export async function createOptimizer<H extends Hyper>(def: OptimizerDef<H>, params: Readonly<Record<string, ParamInput>>, opts: OptimizerOptions<H> = {}): Promise<Session<H>> {
  const r = resolve(opts as OptimizerOptions<Hyper>);
  const entries = Object.entries(params).map(([n, p]) => asEntry(n, p));
  if (entries.length === 0) throw new RangeError('createOptimizer: no parameters');
  const backend = opts.backend === undefined || opts.backend === 'js' ? new JsBackend() : opts.backend;
  const l: Layout = layout(entries.map((e) => ({ name: e.name, shape: e.shape, length: e.data.length })), r.groupSize);
  const codecs = codecsFor(def, r);
  const slots: FieldSlot[] = [
    ...fieldSlots(PARAM, codecs.param),
    ...Object.entries(codecs.states).flatMap(([k, c]) => fieldSlots(k, c)),
  ];
  const gradSlots = fieldSlots(GRAD, codecs.grad);
  const { buffers, rowOf } = await allocate(backend, l, r.gradientRelease ? slots : [...slots, ...gradSlots]);
  const program: Program = await backend.compile(fusedKernel(def, opts, false));
  const release = r.gradientRelease ? await backend.compile(fusedKernel(def, opts, true)) : null;
  const groups = (opts.groups ?? []).map((g, i) => {
    for (const n of g.params) if (!l.byName.has(n)) throw new RangeError(`createOptimizer: groups[${i}] names unknown tensor ${n}`);
    return { params: new Set(g.params), def: def.with(g.hyper) };
  });
  const s = new Session<H>({ def, backend, layout: l, resolved: r, codecs, slots, gradSlots, buffers, rowOf, program, release, groups, schedule: opts.schedule, initialLr: Number(def.hyper['lr'] ?? 0) });
  await s.importValues(Object.fromEntries(entries.map((e) => [e.name, e.data])), true);
  return s;
}

export type { FieldArray, DeviceBuffer, Uniforms };
type Uniforms = Parameters<typeof buildUniformTable>[1][number];
