// createOptimizer: bind an optimizer definition to named tensors. The arena holds every stored
// field; a step writes the gradients, builds the uniform table (one row per tensor, computed on
// the host in float64) and launches ONE fused kernel over all groups. Nothing recompiles when
// hyperparameters change: they are uniforms.

import { GRAD, PARAM } from '../optim/fuse.ts';
import type { Hyper, OptimizerDef } from '../optim/define.ts';
import { codecsFor, fusedKernel } from '../optim/storage.ts';
import type { OptimizerOptions, ParamInput } from './options.ts';
import { resolveOptions } from './options.ts';
import type { Program } from './backends/backend.ts';
import { JsBackend } from './backends/js/js.ts';
import type { FieldSlot, Layout } from './arena.ts';
import { allocate, fieldSlots, layout } from './arena.ts';
import { Session } from './session.ts';
import { adam, adamw } from '../optim/adam.ts';
import { lion } from '../optim/lion.ts';
import { sgd, sgdw } from '../optim/sgd.ts';
import type { Backend } from './backends/backend.ts';
import { loadCheckpoint } from './checkpoint.ts';
import { CheckpointError, decode } from './safetensors.ts';

function asEntry(name: string, p: ParamInput): { name: string; data: Float32Array | Uint16Array; shape: number[] } {
  const data = p instanceof Float32Array || p instanceof Uint16Array ? p : p?.data;
  if (!(data instanceof Float32Array || data instanceof Uint16Array))
    throw new TypeError(
      `createOptimizer: param ${name} must be a Float32Array, a Uint16Array (bf16 bits) or { data, shape }, got ${p?.constructor?.name ?? typeof p}`,
    );
  const shape = p instanceof Float32Array || p instanceof Uint16Array ? [data.length] : [...p.shape];
  if (shape.reduce((a, b) => a * b, 1) !== data.length)
    throw new RangeError(`createOptimizer: param ${name} has shape [${shape}] but ${data.length} values`);
  return { name, data, shape };
}

export async function createOptimizer<H extends Hyper>(
  def: OptimizerDef<H>,
  params: Readonly<Record<string, ParamInput>>,
  opts: OptimizerOptions<H> = {},
): Promise<Session<H>> {
  const r = resolveOptions(opts as OptimizerOptions<Hyper>);
  const entries = Object.entries(params).map(([n, p]) => asEntry(n, p));
  if (entries.length === 0) throw new RangeError('createOptimizer: no parameters');
  const backend = opts.backend === undefined || opts.backend === 'js' ? new JsBackend() : opts.backend;
  const l: Layout = layout(
    entries.map((e) => ({ name: e.name, shape: e.shape, length: e.data.length })),
    r.groupSize,
  );
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
    for (const n of g.params)
      if (!l.byName.has(n)) throw new RangeError(`createOptimizer: groups[${i}] names unknown tensor ${n}`);
    return { params: new Set(g.params), def: def.with(g.hyper) };
  });
  const s = new Session<H>({
    def,
    backend,
    layout: l,
    resolved: r,
    codecs,
    slots,
    gradSlots,
    buffers,
    rowOf,
    program,
    release,
    groups,
    schedule: opts.schedule,
    initialLr: Number(def.hyper['lr'] ?? 0),
  });
  await s.importValues(Object.fromEntries(entries.map((e) => [e.name, e.data])), true);
  return s;
}

const builtins: Record<string, (h?: never) => OptimizerDef<never>> = { adam, adamw, sgd, sgdw, lion } as never;

/** Create an optimizer from a checkpoint alone (built-ins by name; pass `def` for your own). */
export async function loadOptimizer(
  bytes: Uint8Array,
  opts: { def?: OptimizerDef<Hyper>; backend?: 'js' | Backend } = {},
): Promise<Session<Hyper>> {
  const { tensors, metadata } = decode(bytes);
  const name = metadata['optimizer'] ?? '';
  const hyper = JSON.parse(metadata['hyper'] ?? '[]') as Hyper[];
  const make = opts.def ?? builtins[name]?.(hyper[0] as never);
  if (!make)
    throw new CheckpointError(
      `loadOptimizer: ${JSON.stringify(name)} is not a built-in optimizer; pass { def } for your own`,
    );
  const saved = JSON.parse(metadata['options'] ?? '{}') as OptimizerOptions;
  const list = JSON.parse(metadata['tensors'] ?? '[]') as { name: string; shape: number[] }[];
  const params = Object.fromEntries(
    list.map((t) => {
      const e = tensors[t.name];
      if (!e) throw new CheckpointError(`loadOptimizer: tensor ${t.name} is missing`);
      return [t.name, { data: e.data as Float32Array | Uint16Array, shape: t.shape }];
    }),
  );
  const s = await createOptimizer(make as OptimizerDef<Hyper>, params, { ...saved, backend: opts.backend ?? 'js' });
  await loadCheckpoint(s, bytes);
  return s;
}
