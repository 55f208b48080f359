// createOptimizer: bind an optimizer definition to named tensors. The arena holds every stored
// field; a step writes the gradients, builds the uniform table (one row per tensor, computed on
// the host in float64) and launches ONE fused kernel over all groups. Nothing recompiles when
// hyperparameters change: they are uniforms.

import { GRAD, PARAM } from '../optim/fuse.ts';
import type { Hyper, OptimizerDef } from '../optim/define.ts';
import type { Storage, StorageOptions } from '../optim/storage.ts';
import { codecsFor, fusedKernel, oneOf, resolveStorage } from '../optim/storage.ts';
import type { Backend, Program } from './backends/backend.ts';
import { JsBackend } from './backends/js/js.ts';
import type { FieldSlot, Layout } from './arena.ts';
import { allocate, fieldSlots, layout } from './arena.ts';
import { Session } from './session.ts';

export interface OptimizerOptions<H extends Hyper = Hyper> extends StorageOptions {
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

/** Every option resolved: the storage, and how the session behaves. */
export interface Resolved extends Storage {
  readonly onNonFinite: 'skip' | 'error';
  readonly checkNumerics: boolean;
  readonly gradientRelease: boolean;
}

function resolve(o: OptimizerOptions<Hyper>): Resolved {
  return {
    ...resolveStorage(o),
    onNonFinite: oneOf('createOptimizer', 'onNonFinite', o.onNonFinite ?? 'skip', ['skip', 'error'] as const),
    checkNumerics: o.checkNumerics ?? false,
    gradientRelease: o.gradientRelease ?? false,
  };
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
  const program: Program = await backend.compile(fusedKernel(def, r, false));
  const release = r.gradientRelease ? await backend.compile(fusedKernel(def, r, true)) : null;
  const groups = (opts.groups ?? []).map((g, i) => {
    for (const n of g.params) if (!l.byName.has(n)) throw new RangeError(`createOptimizer: groups[${i}] names unknown tensor ${n}`);
    return { params: new Set(g.params), def: def.with(g.hyper) };
  });
  const s = new Session<H>({ def, backend, layout: l, resolved: r, codecs, slots, gradSlots, buffers, rowOf, program, release, groups, schedule: opts.schedule, initialLr: Number(def.hyper['lr'] ?? 0) });
  await s.importValues(Object.fromEntries(entries.map((e) => [e.name, e.data])), true);
  return s;
}
