// createOptimizer: bind an optimizer definition to named tensors. The arena holds every stored
// field; a step writes the gradients, builds the uniform table (one row per tensor, computed on
// the host in float64) and launches ONE fused kernel over all groups. Nothing recompiles when
// hyperparameters change: they are uniforms. Everything is checked before any buffer exists.

import { prepare } from '../compiler/ir/pipeline.ts';
import type { Hyper, OptimizerDef } from '../optim/define.ts';
import { shown } from '../optim/define.ts';
import { GRAD, PARAM, gradNormSquared } from '../optim/fuse.ts';
import { loadStored } from '../dsl/codec.ts';
import { splitPhases } from '../compiler/ir/phases.ts';
import type { Reductions } from './reductions.ts';
import { prepareReductions, refuseReductions } from './reductions.ts';
import { adabelief, adagrad, adam, adamw, ademamix, lamb, lars, lion, rmsprop, sgd, sgdw } from '../optim/index.ts';
import { STORAGE_KEYS, codecsFor, fusedKernel } from '../optim/storage.ts';
import type { FieldSlot } from './arena.ts';
import { fieldSlots, layout } from './arena.ts';
import { allocateChunks } from './chunks.ts';
import type { DeviceParam } from './on-device.ts';
import { isDeviceParam } from './on-device.ts';
import { deviceParams } from './params.ts';
import { importValues } from './values.ts';
import type { Backend, DeviceBuffer, Program } from './backends/backend.ts';
import { JsBackend } from './backends/js/js.ts';
import { parseCheckpoint } from './checkpoint.ts';
import { crc32 } from './crc32.ts';
import { Hypers } from './hypers.ts';
import type { Work } from './io.ts';
import { compile, drive, driveSync, syncOf } from './io.ts';
import type { OptimizerOptions, ParamInput } from './options.ts';
import { resolveOptions } from './options.ts';
import { CheckpointError, encode } from './safetensors.ts';
import { Session } from './session.ts';
import { State } from './state.ts';

const W = 'createOptimizer';

interface Entry {
  readonly name: string;
  /** Host values, or null for a parameter on the device (`device`). */
  readonly data: Float32Array | Uint16Array | null;
  readonly device?: DeviceParam;
  readonly shape: number[];
  readonly length: number;
}

/** Names a checkpoint can hold: `name::field` keys the states, `__metadata__` is the format's own. */
function checkName(name: string): void {
  if (name === '' || name === '__metadata__' || name.includes('::'))
    throw new RangeError(
      `${W}: tensor name ${shown(name)} is reserved (empty, __metadata__, or containing '::', which checkpoints use for state fields)`,
    );
}

const checkShape = (name: string, shape: unknown): number[] => {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new TypeError(
      `${W}: param ${shown(name)}: shape must be an array of non-negative integers, got ${shown(shape)}`,
    );
  return [...shape];
};

function asEntry(name: string, p: ParamInput): Entry {
  checkName(name);
  if (p instanceof Float32Array || p instanceof Uint16Array)
    return { name, data: p, shape: [p.length], length: p.length };
  if (isDeviceParam(p)) {
    if (p.dtype !== 'f32')
      throw new TypeError(
        `${W}: param ${shown(name)}: a device parameter's dtype must be 'f32', got ${shown(p.dtype)}`,
      );
    const shape = checkShape(name, p.shape);
    return { name, data: null, device: p, shape, length: shape.reduce((a, b) => a * b, 1) };
  }
  if (p === null || typeof p !== 'object' || Array.isArray(p) || ArrayBuffer.isView(p) || !('data' in p))
    throw new TypeError(
      `${W}: param ${shown(name)} must be a Float32Array, a Uint16Array (bf16 bits), { data, shape } or a device parameter { buffer, dtype: 'f32', shape }, got ${shown(p)}`,
    );
  const { data, shape } = p as { data?: unknown; shape?: unknown };
  if (!(data instanceof Float32Array || data instanceof Uint16Array))
    throw new TypeError(
      `${W}: param ${shown(name)}: data must be a Float32Array or a Uint16Array (bf16 bits), got ${shown(data)}`,
    );
  const dims = checkShape(name, shape);
  if (dims.reduce((a: number, b: number) => a * b, 1) !== data.length)
    throw new RangeError(`${W}: param ${shown(name)} has shape [${dims}] but ${data.length} values`);
  return { name, data, shape: dims, length: data.length };
}

/** Everything createOptimizer checks and derives before the backend is touched. */
function plan<H extends Hyper>(
  def: OptimizerDef<H>,
  params: Readonly<Record<string, ParamInput>>,
  opts: OptimizerOptions<H>,
) {
  if (!def || typeof def !== 'object' || typeof def.update !== 'function' || typeof def.with !== 'function')
    throw new TypeError(
      `${W}: the first argument must be an optimizer definition (adamw(), sgd({ … }), defineOptimizer(…)(…)), got ${shown(def)}`,
    );
  if (params === null || typeof params !== 'object' || Array.isArray(params))
    throw new TypeError(`${W}: params must be an object of tensors by name, got ${shown(params)}`);
  const r = resolveOptions(opts as OptimizerOptions<Hyper>);
  const entries = Object.entries(params).map(([n, p]) => asEntry(n, p));
  if (entries.length === 0) throw new RangeError(`${W}: no parameters`);
  const onDevice = entries.filter((e) => e.device).length;
  if (onDevice > 0 && onDevice < entries.length)
    throw new TypeError(
      `${W}: ${onDevice} of ${entries.length} params are device parameters; give every param on the device or none (${shown(entries.find((e) => !e.device)!.name)} is a host array)`,
    );
  if (onDevice > 0 && r.paramDtype !== 'f32')
    throw new TypeError(
      `${W}: device parameters are the master weights, updated in place as f32: pass paramDtype: 'f32' (got ${shown(r.paramDtype)})`,
    );
  const l = layout(
    entries.map((e) => ({ name: e.name, shape: e.shape, length: e.length })),
    r.groupSize,
  );
  const hypers = new Hypers<H>(def, l, opts.groups ?? []);
  const storage = Object.fromEntries(STORAGE_KEYS.map((k) => [k, r[k]]));
  const stepOpts = r.clipGradNorm === undefined ? storage : { ...storage, clipGradNorm: r.clipGradNorm };
  const step = fusedKernel(def, stepOpts, false); // also checks the update (unknown fields, NaN constants, …)
  const phases = splitPhases(step);
  // Gradient release steps one tensor at a time as its gradient arrives: no launch sees them all.
  if (r.gradientRelease && phases.passes.length)
    throw new RangeError(
      `${W}: gradientRelease cannot run ${r.clipGradNorm !== undefined ? 'clipGradNorm' : `${def.name}'s reductions`} (a reduction needs every element of its tensor or of the step in one launch); turn one of them off`,
    );
  const release = r.gradientRelease ? fusedKernel(def, storage, true) : null;
  const codecs = codecsFor(def, r);
  const slots: FieldSlot[] = [
    ...fieldSlots(PARAM, codecs.param),
    ...Object.entries(codecs.states).flatMap(([k, c]) => fieldSlots(k, c)),
  ];
  const gradSlots = fieldSlots(GRAD, codecs.grad);
  return {
    r,
    entries,
    l,
    hypers,
    step,
    release,
    codecs,
    slots,
    gradSlots,
    gradValue: codecs.grad.decode(loadStored(GRAD, codecs.grad)),
    // Without reductions the key of the one kernel (as before); with them, of every phase.
    kernelKey: crc32(
      new TextEncoder().encode([phases.update, ...phases.passes].map((k) => prepare(k).key).join('|')),
    ).toString(16),
  };
}

/** Allocate the arena, compile, import the parameters; every buffer is freed again if anything fails. */
function* build<H extends Hyper>(
  def: OptimizerDef<H>,
  backend: Backend,
  p: ReturnType<typeof plan<H>>,
  schedule: OptimizerOptions<H>['schedule'],
): Work<State<H>> {
  const all: DeviceBuffer[] = [];
  let reductions: Reductions | null = null;
  try {
    const counters = backend.alloc('u32', 1);
    all.push(counters);
    const inPlace = deviceParams(backend, p.l, p.entries);
    const held = inPlace ? p.slots.filter((f) => f.name !== PARAM) : p.slots;
    const chunks = yield* allocateChunks(backend, p.l, held, p.r.gradientRelease ? [] : p.gradSlots);
    for (const c of chunks) all.push(...c.owned);
    const phases = splitPhases(p.step);
    if (phases.passes.length)
      refuseReductions(backend, p.r.clipGradNorm !== undefined ? 'clipGradNorm' : `optimizer ${def.name}`);
    const program = (yield compile(phases.update)) as Program;
    reductions = yield* prepareReductions(backend, p.step, p.l, chunks, gradNormSquared(p.gradValue), all);
    const release = p.release ? ((yield compile(p.release)) as Program) : null;
    const s = new State<H>({
      def,
      backend,
      layout: p.l,
      options: p.r,
      codecs: p.codecs,
      slots: p.slots,
      gradSlots: p.gradSlots,
      chunks,
      counters,
      program,
      release,
      hypers: p.hypers,
      schedule,
      initialLr: Number(def.hyper['lr'] ?? 0),
      kernelKey: p.kernelKey,
      inPlace,
      reductions,
    });
    if (!inPlace) yield* importValues(s, new Map(p.entries.map((e) => [p.l.byName.get(e.name)!, e.data!])));
    return s;
  } catch (e) {
    for (const b of all) backend.free(b);
    reductions?.device?.free();
    throw e;
  }
}

const backendOf = (o: OptimizerOptions<Hyper>): Backend =>
  o.backend === undefined || o.backend === 'js' ? new JsBackend() : o.backend;

export async function createOptimizer<H extends Hyper>(
  def: OptimizerDef<H>,
  params: Readonly<Record<string, ParamInput>>,
  opts: OptimizerOptions<H> = {},
): Promise<Session<H>> {
  const p = plan(def, params, opts);
  const backend = backendOf(opts as OptimizerOptions<Hyper>);
  return new Session(await drive(backend, build(def, backend, p, opts.schedule)));
}

/** createOptimizer within this call, on the JS backend (the TF.js adapter's first step needs it). */
export function createOptimizerSync<H extends Hyper>(
  def: OptimizerDef<H>,
  params: Readonly<Record<string, ParamInput>>,
  opts: OptimizerOptions<H> = {},
): Session<H> {
  const p = plan(def, params, opts);
  const backend = syncOf(backendOf(opts as OptimizerOptions<Hyper>), 'createOptimizerSync');
  return new Session(driveSync(backend, build(def, backend, p, opts.schedule)));
}

const builtins: Readonly<Record<string, (h?: never) => OptimizerDef<never>>> = {
  adam,
  adamw,
  sgd,
  sgdw,
  lion,
  rmsprop,
  adagrad,
  adabelief,
  ademamix,
  lamb,
  lars,
} as never;

/** Create an optimizer from a checkpoint alone (built-ins by name; pass `def` for your own). */
export async function loadOptimizer(
  bytes: Uint8Array,
  opts: { def?: OptimizerDef<Hyper>; backend?: 'js' | Backend; clipGradNorm?: number } = {},
): Promise<Session<Hyper>> {
  const p = parseCheckpoint(bytes);
  const make = builtins[p.optimizer];
  if (!opts.def && !Object.prototype.hasOwnProperty.call(builtins, p.optimizer))
    throw new CheckpointError(
      `loadOptimizer: ${shown(p.optimizer)} is not a built-in optimizer; pass { def } for your own`,
    );
  let def: OptimizerDef<Hyper>;
  try {
    // The definition's own lr is the one the optimizer was created with (decoupleLr scales by it).
    def = (opts.def ?? (make!() as OptimizerDef<Hyper>)).with({
      ...p.groups[0]!.hyper,
      ...('lr' in p.groups[0]!.hyper ? { lr: p.initialLr } : {}),
    });
  } catch (e) {
    throw new CheckpointError(
      `loadOptimizer: the saved hyperparameters do not fit ${p.optimizer}: ${(e as Error).message}`,
    );
  }
  const params = Object.fromEntries(
    p.tensors.map((t) => {
      const e = p.data.get(t.name);
      if (!e) throw new CheckpointError(`loadOptimizer: tensor ${shown(t.name)} is missing`);
      return [t.name, { data: e.data as Float32Array | Uint16Array, shape: [...t.shape] }];
    }),
  );
  const groups = p.groups.slice(1).map((g) => ({ params: g.params, hyper: g.hyper }));
  let s: Session<Hyper>;
  try {
    s = await createOptimizer(def, params, {
      ...p.options,
      groups,
      backend: opts.backend ?? 'js',
      ...(opts.clipGradNorm === undefined ? {} : { clipGradNorm: opts.clipGradNorm }),
    });
  } catch (e) {
    throw e instanceof CheckpointError
      ? e
      : new CheckpointError(`loadOptimizer: cannot create the saved optimizer: ${(e as Error).message}`);
  }
  await s.load(bytes);
  return s;
}

/** Master weights as f32 safetensors: loadable by any reader (torch, numpy, TF.js, …). */
export async function saveFp32(opt: Session<Hyper>): Promise<Uint8Array> {
  const all = await opt.exportFp32();
  return encode(
    new Map(opt.layout.tensors.map((t) => [t.name, { dtype: 'F32' as const, shape: t.shape, data: all[t.name]! }])),
    { format: 'flashoptim-fp32/1' },
  );
}
