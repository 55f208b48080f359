// Optimizer checkpoints, format flashoptim/2, in safetensors (readable anywhere). Each tensor's
// parameter is stored under its own name (any safetensors reader loads the model weights), every
// other stored field under `name::field` (correction bits, state codes, group scales). The
// metadata holds the optimizer's name, kernel structure, storage options, parameter groups with
// their hyperparameters, per-tensor shapes and step counts; a CRC-32 covers every byte of the file.
//
// Loading is three stages and only the last changes anything: `parseCheckpoint` checks the file
// against a strict schema (types, integer ranges, finite numbers, offsets that tile the data,
// dtypes); `matchCheckpoint` checks it against the optimizer (name, structure, kernel, options,
// tensor names, shapes, groups, every field's dtype and length) and builds the arenas;
// `restoreCheckpoint` writes them. Every failure is a CheckpointError naming what is wrong.

import type { Storage } from '../compiler/ir/ir.ts';
import type { FieldArray } from '../compiler/ir/kernel.ts';
import { arrayFor } from '../compiler/ir/kernel.ts';
import type { Hyper, OptimizerDef } from '../optim/define.ts';
import { PARAM } from '../optim/fuse.ts';
import type { Storage as StorageOptions } from '../optim/storage.ts';
import { readFileBytes, writeFileAtomic } from './files.ts';
import type { Work } from './io.ts';
import type { Dtype, Entry } from './safetensors.ts';
import { CheckpointError, decode, encode } from './safetensors.ts';
import type { State } from './state.ts';

export { CheckpointError };
export const FORMAT = 'flashoptim/2';

/** The dtype a field is stored with in the file (bf16 words as BF16, fp16 scales as F16, …). */
function dtypeOf(field: string, storage: Storage, scale: StorageOptions['scale']): Dtype {
  if (storage === 'u16') return field.endsWith('_scale') && scale === 'fp16' ? 'F16' : 'BF16';
  return ({ f32: 'F32', i32: 'I32', u32: 'U32', i16: 'I16', u8: 'U8', i8: 'I8' } as const)[storage];
}

const keyOf = (tensor: string, field: string) => (field === PARAM ? tensor : `${tensor}::${field}`);
const STORAGE_KEYS = ['masterWeightBits', 'paramDtype', 'quantize', 'groupSize', 'scale', 'gradDtype'] as const;

export function* saveCheckpoint<H extends Hyper>(s: State<H>): Work<Uint8Array> {
  const tensors = new Map<string, Entry>();
  for (const f of s.slots)
    for (const t of s.layout.tensors) {
      const [g0, g1] = t.groups;
      const data =
        f.axis === 'group' ? yield* s.readRange(f.name, g0, g1 - g0) : yield* s.readRange(f.name, t.offset, t.length);
      tensors.set(keyOf(t.name, f.name), {
        dtype: dtypeOf(f.name, f.storage, s.options.scale),
        shape: f.axis === 'group' ? [g1 - g0] : t.shape,
        data,
      });
    }
  const members = s.hypers.members();
  return encode(tensors, {
    format: FORMAT,
    optimizer: s.def.name,
    structure: s.def.structure,
    kernel: s.kernelKey,
    options: JSON.stringify(Object.fromEntries(STORAGE_KEYS.map((k) => [k, s.options[k]]))),
    initialLr: String(s.initialLr),
    tensors: JSON.stringify(s.layout.tensors.map((t) => ({ name: t.name, shape: t.shape, steps: s.steps[t.row]! }))),
    groups: JSON.stringify(members.map((params, i) => ({ hyper: s.hypers.def(i).hyper, params }))),
    stepCount: String(s.stepCount),
  });
}

export interface Parsed {
  readonly optimizer: string;
  readonly structure: string;
  readonly kernel: string;
  readonly options: StorageOptions;
  readonly initialLr: number;
  readonly tensors: readonly { readonly name: string; readonly shape: readonly number[]; readonly steps: number }[];
  readonly groups: readonly { readonly hyper: Hyper; readonly params: readonly string[] }[];
  readonly stepCount: number;
  readonly data: ReadonlyMap<string, Entry>;
}

const fail = (msg: string): never => {
  throw new CheckpointError(`checkpoint: ${msg}`);
};
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const count = (x: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number =>
  typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 && x <= max
    ? x
    : fail(`${what} must be an integer in [0, ${max}], got ${JSON.stringify(x)}`);

/** Decode and check a file against the format's schema; nothing about any optimizer yet. */
export function parseCheckpoint(bytes: Uint8Array): Parsed {
  if (!(bytes instanceof Uint8Array))
    fail(`expected the checkpoint's bytes as a Uint8Array, got ${bytes === null ? 'null' : typeof bytes}`);
  const { tensors, metadata } = decode(bytes);
  const meta = (k: string): string => metadata.get(k) ?? fail(`metadata ${k} is missing`);
  const json = (k: string): unknown => {
    const text = meta(k);
    try {
      return JSON.parse(text);
    } catch {
      return fail(`metadata ${k} is not valid JSON`);
    }
  };
  const format = meta('format');
  if (format !== FORMAT)
    fail(
      `format ${JSON.stringify(format)} is not ${FORMAT}${format === 'flashoptim/1' ? ' (flashoptim/1 predates header checksums and saved groups, and is not read; to carry its weights over, export them with saveFp32 from the version that wrote it and importFp32 them here)' : ''}`,
    );
  const options = json('options');
  if (
    !isObject(options) ||
    Object.keys(options).length !== STORAGE_KEYS.length ||
    !STORAGE_KEYS.every((k) => k in options)
  )
    fail('metadata options is malformed');
  const o = options as Record<string, unknown>;
  if (
    ![24, 32, null].includes(o.masterWeightBits as number) ||
    !['bf16', 'f32'].includes(o.paramDtype as string) ||
    typeof o.quantize !== 'boolean' ||
    !['bf16', 'fp16', 'f32'].includes(o.scale as string) ||
    !['bf16', 'f32'].includes(o.gradDtype as string)
  )
    fail(`metadata options has a value out of range: ${meta('options')}`);
  count(o.groupSize, 'options.groupSize', 4096);
  const list = json('tensors');
  if (!Array.isArray(list) || list.length === 0) fail('metadata tensors must be a non-empty array');
  const names = new Set<string>();
  const parsedTensors = (list as unknown[]).map((t, i) => {
    if (!isObject(t) || typeof t.name !== 'string' || !Array.isArray(t.shape))
      return fail(`tensors[${i}] must be { name, shape, steps }`);
    if (names.has(t.name)) fail(`tensor ${JSON.stringify(t.name)} is listed twice`);
    names.add(t.name);
    return {
      name: t.name,
      shape: t.shape.map((d, j) => count(d, `tensors[${i}].shape[${j}]`)),
      steps: count(t.steps, `tensors[${i}].steps`, 2 ** 31 - 1),
    };
  });
  const groups = json('groups');
  if (!Array.isArray(groups) || groups.length === 0) fail('metadata groups must be a non-empty array');
  const grouped = new Set<string>();
  const parsedGroups = (groups as unknown[]).map((g, i) => {
    if (!isObject(g) || !isObject(g.hyper) || !Array.isArray(g.params))
      return fail(`groups[${i}] must be { hyper, params }`);
    for (const n of g.params) {
      if (typeof n !== 'string' || !names.has(n) || grouped.has(n))
        fail(`groups[${i}] names ${JSON.stringify(n)}, which is unknown or already in a group`);
      grouped.add(n);
    }
    for (const [k, v] of Object.entries(g.hyper))
      if (!(
        typeof v === 'boolean' ||
        (typeof v === 'number' && Number.isFinite(v)) ||
        (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x)))
      ))
        fail(`groups[${i}].hyper.${k} is not a finite number, a boolean or a list of finite numbers`);
    return { hyper: g.hyper as Hyper, params: g.params as string[] };
  });
  if (grouped.size !== names.size) fail('groups do not cover every tensor');
  const initialLr = Number(meta('initialLr'));
  if (!Number.isFinite(initialLr) || initialLr < 0 || String(initialLr) !== meta('initialLr'))
    fail(`metadata initialLr ${JSON.stringify(meta('initialLr'))} is not a finite number >= 0`);
  const stepCount = count(Number(meta('stepCount')), 'metadata stepCount', 2 ** 31 - 1);
  if (String(stepCount) !== meta('stepCount'))
    fail(`metadata stepCount ${JSON.stringify(meta('stepCount'))} is not an integer`);
  return {
    optimizer: meta('optimizer'),
    structure: meta('structure'),
    kernel: meta('kernel'),
    options: o as unknown as StorageOptions,
    initialLr,
    tensors: parsedTensors,
    groups: parsedGroups,
    stepCount,
    data: tensors,
  };
}

/** What loading writes: the whole arena of every field, each group's definition, the step counts. */
export interface Restore<H extends Hyper> {
  readonly arenas: readonly [string, FieldArray][];
  readonly defs: readonly OptimizerDef<H>[];
  readonly steps: Int32Array;
  readonly stepCount: number;
}

/** Check a parsed checkpoint against `s` (which it must fit exactly) and build what `restore` writes. */
export function matchCheckpoint<H extends Hyper>(s: State<H>, p: Parsed): Restore<H> {
  const want = (what: string, file: unknown, here: unknown) => {
    if (JSON.stringify(file) !== JSON.stringify(here))
      fail(`${what} is ${JSON.stringify(file)} in the file but ${JSON.stringify(here)} here`);
  };
  want('the optimizer', p.optimizer, s.def.name);
  want("the kernel's structure", p.structure, s.def.structure);
  for (const k of STORAGE_KEYS) want(`option ${k}`, p.options[k], s.options[k]);
  want('the kernel', p.kernel, s.kernelKey);
  want(
    'the tensors (names and shapes, in order)',
    p.tensors.map((t) => [t.name, t.shape]),
    s.layout.tensors.map((t) => [t.name, t.shape]),
  );
  const members = s.hypers.members();
  want(
    'the parameter groups',
    p.groups.map((g) => g.params),
    members,
  );
  const defs = p.groups.map((g, i) => {
    try {
      const d = s.def.with(g.hyper as Partial<H>);
      if (d.structure !== s.def.structure)
        fail(`groups[${i}]'s hyperparameters change the kernel's structure (${d.structure})`);
      return d;
    } catch (e) {
      return e instanceof CheckpointError
        ? fail(e.message)
        : fail(`groups[${i}] has invalid hyperparameters: ${(e as Error).message}`);
    }
  });
  const expected = new Set<string>();
  const arenas = s.slots.map((f) => {
    const whole = new arrayFor[f.storage](f.axis === 'group' ? s.layout.groups : s.layout.length);
    const dtype = dtypeOf(f.name, f.storage, s.options.scale);
    for (const t of s.layout.tensors) {
      const key = keyOf(t.name, f.name);
      expected.add(key);
      const e = p.data.get(key) ?? fail(`tensor ${key} is missing`);
      const shape = f.axis === 'group' ? [t.groups[1] - t.groups[0]] : t.shape;
      if (e.dtype !== dtype || JSON.stringify(e.shape) !== JSON.stringify(shape))
        fail(`${key} is ${e.dtype} ${JSON.stringify(e.shape)}, expected ${dtype} ${JSON.stringify(shape)}`);
      whole.set(e.data as never, f.axis === 'group' ? t.groups[0] : t.offset);
    }
    return [f.name, whole] as [string, FieldArray];
  });
  for (const key of p.data.keys()) if (!expected.has(key)) fail(`tensor ${key} is not a field of this optimizer`);
  return { arenas, defs, steps: Int32Array.from(p.tensors, (t) => t.steps), stepCount: p.stepCount };
}

/** Write a matched checkpoint into `s`. */
export function* restoreCheckpoint<H extends Hyper>(s: State<H>, r: Restore<H>): Work<void> {
  for (const [name, whole] of r.arenas) yield* s.writeRange(name, 0, whole);
  s.steps.set(r.steps);
  s.stepCount = r.stepCount;
  s.hypers.set(r.defs);
}

/** Anything with `save()`: a session. */
interface Saves {
  save(): Promise<Uint8Array>;
  load(bytes: Uint8Array): Promise<void>;
}

/** Save a checkpoint file atomically (a unique temporary file, fsync, rename, fsync of the folder). */
export async function saveCheckpointFile(opt: Saves, path: string): Promise<void> {
  await writeFileAtomic(path, await opt.save());
}

export async function loadCheckpointFile(opt: Saves, path: string): Promise<void> {
  let bytes: Uint8Array;
  try {
    bytes = await readFileBytes(path);
  } catch (e) {
    throw new CheckpointError(`checkpoint: cannot read ${path}: ${(e as Error).message}`);
  }
  await opt.load(bytes);
}
