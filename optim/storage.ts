// Storage choice: how an optimizer's fields are stored (bf16 + correction or f32 parameters,
// 8-bit companded or plain states, the group size and the scale format), validated once, and
// the fused kernel that stores them so. Every backend compiles the kernel `fusedKernel` returns.

import type { Kernel } from '../compiler/ir/kernel.ts';
import { uniformsOf } from '../compiler/ir/kernel.ts';
import type { Codec } from '../dsl/codec.ts';
import { f32Codec, masterCodec } from '../dsl/master.ts';
import type { ScaleStorage } from '../dsl/quant.ts';
import type { Hyper, OptimizerDef } from './define.ts';
import { shown } from './define.ts';
import { fuse } from './fuse.ts';

export interface StorageOptions {
  /** 24 (int8 correction, default), 32 (int16) or null (the narrow value alone). */
  readonly masterWeightBits?: 24 | 32 | null;
  /** Parameter storage: 'bf16' (default, with the correction) or 'f32' (full precision, no correction). */
  readonly paramDtype?: 'bf16' | 'f32';
  /** 8-bit companded states (default) or states in the parameter's dtype. */
  readonly quantize?: boolean;
  /** Elements per quantization group (default 32). */
  readonly groupSize?: number;
  /** Storage of each group's scale: 'bf16' rounded up (default), 'fp16' (the reference's) or 'f32'. */
  readonly scale?: ScaleStorage;
  /** Gradient storage: 'bf16' (default; Float32Array gradients are rounded to bf16) or 'f32'. */
  readonly gradDtype?: 'bf16' | 'f32';
}

/** What the step does beyond the optimizer's update: the kernel changes with it. */
export interface StepOptions {
  /** Clip the gradients by their global norm: g · min(1, c / (‖g‖ + 1e−6)), like torch's clip_grad_norm_. */
  readonly clipGradNorm?: number;
}

/** A clip threshold, checked: a finite number > 0. */
export function clipOption(who: string, c: unknown): number | undefined {
  if (c === undefined) return undefined;
  if (typeof c !== 'number' || !Number.isFinite(c) || !(c > 0))
    throw new RangeError(`${who}: clipGradNorm must be a finite number > 0, got ${shown(c)}`);
  return c;
}

/** Storage options with every default filled in and every value checked. */
export interface Storage {
  readonly masterWeightBits: 24 | 32 | null;
  readonly paramDtype: 'bf16' | 'f32';
  readonly quantize: boolean;
  readonly groupSize: number;
  readonly scale: ScaleStorage;
  readonly gradDtype: 'bf16' | 'f32';
}

/** `value` if it is one of `allowed`, else a RangeError naming the option (`who: name must be one of …`). */
export function oneOf<T>(who: string, name: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value))
    throw new RangeError(
      `${who}: ${name} must be one of ${allowed.map((a) => shown(a)).join(', ')}, got ${shown(value)}`,
    );
  return value;
}

/** A boolean option (default `fallback`): `quantize: 'yes'` or `1` is an error, not a truthy guess. */
export function flag(who: string, name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`${who}: ${name} must be true or false, got ${shown(value)}`);
  return value;
}

/** Refuse option keys nobody reads (a typo such as `masterWeightBit` would otherwise be ignored). */
export function knownKeys(who: string, o: object, known: readonly string[]): void {
  if (o === null || typeof o !== 'object') throw new TypeError(`${who}: options must be an object, got ${shown(o)}`);
  for (const k of Object.keys(o))
    if (!known.includes(k)) throw new RangeError(`${who}: unknown option ${k} (known: ${known.join(', ')})`);
}

export const STORAGE_KEYS = ['masterWeightBits', 'paramDtype', 'quantize', 'groupSize', 'scale', 'gradDtype'] as const;

export function resolveStorage(o: StorageOptions, who = 'createOptimizer'): Storage {
  const paramDtype = oneOf(who, 'paramDtype', o.paramDtype ?? 'bf16', ['bf16', 'f32'] as const);
  const bits = oneOf(
    who,
    'masterWeightBits',
    o.masterWeightBits === undefined ? (paramDtype === 'f32' ? null : 24) : o.masterWeightBits,
    [24, 32, null] as const,
  );
  if (paramDtype === 'f32' && bits !== null)
    throw new RangeError(
      `${who}: masterWeightBits ${bits} has no effect on f32 parameters (the reference raises too); use null`,
    );
  const groupSize = o.groupSize ?? 32;
  if (!Number.isInteger(groupSize) || groupSize < 1 || groupSize > 4096)
    throw new RangeError(`${who}: groupSize must be an integer in [1, 4096], got ${groupSize}`);
  return {
    masterWeightBits: bits,
    paramDtype,
    groupSize,
    quantize: flag(who, 'quantize', o.quantize, true),
    scale: oneOf(who, 'scale', o.scale ?? 'bf16', ['bf16', 'fp16', 'f32'] as const),
    gradDtype: oneOf(who, 'gradDtype', o.gradDtype ?? 'bf16', ['bf16', 'f32'] as const),
  };
}

/** The codec of every stored field: parameter, gradient and each state by name. */
export interface Codecs {
  readonly param: Codec;
  readonly grad: Codec;
  readonly states: Readonly<Record<string, Codec>>;
}

export function codecsFor<H extends Hyper>(def: OptimizerDef<H>, s: Storage): Codecs {
  const param = s.paramDtype === 'f32' ? f32Codec : masterCodec({ narrow: 'bf16', bits: s.masterWeightBits });
  const grad = s.gradDtype === 'f32' ? f32Codec : masterCodec({ narrow: 'bf16', bits: null });
  const states = Object.fromEntries(
    Object.entries(def.states).map(([k, spec]) => [
      k,
      spec({ quantize: s.quantize, scale: s.scale, paramDtype: s.paramDtype }),
    ]),
  );
  return { param, grad, states };
}

/**
 * The fused step kernel of an optimizer under the given storage (what every backend compiles;
 * with reductions, after compiler/ir/phases.ts splits it).
 * `windowGrad`: the gradient field holds only the launched groups (gradient release).
 */
export function fusedKernel<H extends Hyper>(
  def: OptimizerDef<H>,
  opts: StorageOptions & StepOptions = {},
  windowGrad = false,
): Kernel {
  knownKeys('fusedKernel', opts, [...STORAGE_KEYS, 'clipGradNorm']);
  const s = resolveStorage(opts, 'fusedKernel');
  const clipGradNorm = clipOption('fusedKernel', opts.clipGradNorm);
  const c = codecsFor(def, s);
  const k = fuse({
    name: def.name,
    groupSize: s.groupSize,
    param: c.param,
    grad: c.grad,
    states: c.states,
    update: (v, u) => def.update(v, u),
    windowGrad,
    clipGradNorm,
  });
  // Every uniform the update reads must be one the optimizer provides each step (or `active`,
  // which the runtime sets): a misspelled u('lr2') is an error now, not a missing value at step 1.
  const provided = new Set([
    ...Object.keys(def.uniforms(def.hyper, { step: 1, initialLr: Number(def.hyper['lr'] ?? 0) })),
    'active',
  ]);
  for (const u of uniformsOf(k))
    if (!provided.has(u))
      throw new RangeError(
        `${def.name}: the update reads uniform ${JSON.stringify(u)}, which uniforms() does not provide (it provides ${[...provided].join(', ')})`,
      );
  return k;
}
