// Gradients in. A gradient is a host array (written to the arena's gradient field), or a buffer
// already on the device (a GPUBuffer on WebGPU: the framework's own gradient, or a region of the
// arena that a backward pass wrote into directly). A device gradient moves into the arena inside
// the step's own submission: not at all when it is already there, by a copy when its storage is
// the arena's, and otherwise by a conversion kernel built from the codecs themselves (the source's
// decode, the gradient codec's encode), so f32 → bf16 on the device rounds as toBf16 does.

import type { Storage } from '../compiler/ir/ir.ts';
import type { FieldArray, Kernel } from '../compiler/ir/kernel.ts';
import { kernel, storageBytes } from '../compiler/ir/kernel.ts';
import type { Codec } from '../dsl/codec.ts';
import { decodeStored, encodeStored } from '../dsl/codec.ts';
import { f32Codec, masterCodec } from '../dsl/master.ts';
import { and, field, isFinite, ne, not, uniform } from '../dsl/ops.ts';
import { shown } from '../optim/define.ts';
import { GRAD } from '../optim/fuse.ts';
import type { Hyper } from '../optim/define.ts';
import type { TensorSlot } from './arena.ts';
import type { Backend, DeviceBuffer, Item, Program } from './backends/backend.ts';
import type { Held } from './held.ts';
import type { DeviceGradient } from './on-device.ts';
import type { Work } from './io.ts';
import { compile, run, submit, write } from './io.ts';
import { NonFiniteError, countNonFinite } from './numerics.ts';

/** A checked gradient: host values in the arena's gradient storage, or a view of a device buffer. */
export type Gradient = { readonly host: FieldArray } | { readonly device: DeviceBuffer };

const sourceCodec = (s: Storage): Codec => (s === 'f32' ? f32Codec : masterCodec({ narrow: 'bf16', bits: null }));

/** A view of a device gradient for tensor `name` of `length` values, every field checked. */
export function deviceView(b: Backend, name: string, length: number, g: DeviceGradient): DeviceBuffer {
  if (!b.wrap)
    throw new TypeError(
      `gradient ${shown(name)}: a device gradient ({ buffer, dtype }) needs a backend with device buffers (WebGpuBackend); this optimizer runs on ${b.name}`,
    );
  if (g.dtype !== 'f32' && g.dtype !== 'bf16')
    throw new TypeError(`gradient ${shown(name)}: dtype must be 'f32' or 'bf16', got ${shown(g.dtype)}`);
  const offset = g.offset ?? 0;
  try {
    return b.wrap(g.buffer, g.dtype === 'f32' ? 'f32' : 'u16', length, offset);
  } catch (e) {
    (e as Error).message = `gradient ${shown(name)}: ${(e as Error).message}`;
    throw e;
  }
}

/**
 * The arena gradient from element i − g0·G of `x` (a `source` buffer holding only the launched
 * groups): its bits when the storage is the arena's (a copy on the GPU's cores, several times the
 * bandwidth of copyBufferToBuffer's copy engine on an H200), else decoded and re-encoded.
 */
export function gradientIn(source: Storage, grad: Codec, groupSize: number): Kernel {
  const x = field('x', source);
  const same = grad.fields.length === 1 && grad.fields[0]!.storage === source;
  return kernel({
    name: `gradient-in-${source}`,
    groupSize,
    outputs: same
      ? [{ field: GRAD, storage: source, axis: 'element', value: x }]
      : encodeStored(GRAD, grad, sourceCodec(source).decode([x])),
    windowed: ['x'],
  });
}

/**
 * On a backend that gathers copies (WebGPU: gather.ts, on the GPU's cores) every same-storage
 * device gradient moves by a copy; elsewhere, or with `gather` false, those at least `kernelFrom`
 * long move by gradientIn on the GPU's cores (several times the copy engine's bandwidth on an
 * H200) and shorter ones by copyBufferToBuffer. Settable only for bench/gpu.ts's intake rows
 * (INTAKE=…); the package does not export it.
 */
export const intakeTuning = { kernelFrom: 1 << 16, gather: true };

/** Counts the non-finite gradient values of active tensors ('error' policy on device gradients). */
export function nonFiniteCheck(grad: Codec, groupSize: number): Kernel {
  return kernel({
    name: 'gradient-check',
    groupSize,
    outputs: [],
    counters: [{ name: 'nonFinite', value: and(ne(uniform('active'), 0), not(isFinite(decodeStored(GRAD, grad)))) }],
  });
}

/** Where a tensor's device gradient goes: the arena's gradient buffer at the tensor's offset. */
export interface Target {
  readonly backend: Backend;
  readonly grad: DeviceBuffer;
  readonly at: number;
  readonly length: number;
  readonly groups: readonly [number, number];
}

/**
 * What moves `view` into the arena: nothing when it already is that region; a launch of `convert`
 * (gradientIn) when the storage differs, when a short tensor's bytes are not whole words, or when
 * a long one can be bound; otherwise a copy.
 */
export function intake(to: Target, view: DeviceBuffer, convert: () => Program): Item[] {
  const b = to.backend,
    sb = storageBytes[view.storage];
  if (view.storage === to.grad.storage) {
    const src = b.native?.(view),
      dst = b.native?.(to.grad);
    if (src && dst && src.buffer === dst.buffer && src.offset === dst.offset + to.at * sb) return [];
    const cheap = intakeTuning.gather && b.gathersCopies === true;
    if ((to.length * sb) % 4 === 0 && (cheap || to.length < intakeTuning.kernelFrom))
      return [{ copy: { from: view, fromAt: 0, to: to.grad, toAt: to.at }, length: to.length }];
  }
  return [
    {
      program: convert(),
      launch: {
        bindings: { [GRAD]: to.grad, x: view },
        uniforms: new Float32Array(1),
        rowOf: null,
        groups: to.groups,
        // Elements past the tensor (the arena's padding) are neither read nor written.
        length: to.at + to.length,
      },
    },
  ];
}

/** Compiled conversion kernels by backend and source storage: compiled once, on first use. */
const converters = new WeakMap<Backend, Map<string, Program>>();

/** What moves each device gradient into the arena, piece by piece; host gradients are written here. */
export function* gradientItems<H extends Hyper>(s: Held<H>, grads: ReadonlyMap<TensorSlot, Gradient>): Work<Item[]> {
  const slot = s.gradSlots[0]!,
    G = s.layout.groupSize;
  const items: Item[] = [];
  for (const [t, g] of grads)
    for (const p of s.piecesOf(t)) {
      const grad = p.chunk.buffers[slot.name]!;
      if ('host' in g) {
        yield write(grad, g.host.subarray(p.from, p.from + p.length), p.at);
        continue;
      }
      const src = g.device.storage,
        key = `${src} ${G} ${s.codecs.grad.name}`;
      let mine = converters.get(s.backend);
      if (!mine) converters.set(s.backend, (mine = new Map()));
      if (!mine.has(key)) mine.set(key, (yield compile(gradientIn(src, s.codecs.grad, G))) as Program);
      // The same buffer at the same place next step moves by the same items: kept, so the backend
      // plans them once (a framework hands over the same gradient buffers every step).
      const groups = [p.at / G, Math.ceil((p.at + p.length) / G)] as const;
      const target = { backend: s.backend, grad, at: p.at, length: p.length, groups };
      const make = () => intake(target, s.sub(g.device, p.from, p.length), () => mine.get(key)!);
      const n = s.backend.native?.(g.device);
      items.push(
        ...(n ? (s.kept.get(s.kept.key('intake', n.buffer, n.offset, src, t.row, p.from), make) as Item[]) : make()),
      );
    }
  // Copies first, then the launches: copies are encoder commands that end a compute pass, so in
  // this order the conversions and the step share one pass.
  return [...items.filter((it) => 'copy' in it), ...items.filter((it) => !('copy' in it))];
}

/**
 * The 'error' policy for device gradients: count their non-finite values on the device (this
 * waits for it), and refuse the step, naming each tensor, before anything but the arena's
 * gradient changes.
 */
export function* refuseNonFinite<H extends Hyper>(
  s: Held<H>,
  grads: ReadonlyMap<TensorSlot, Gradient>,
  items: readonly Item[],
): Work<void> {
  if (items.length) yield submit(items);
  const program = (yield compile(nonFiniteCheck(s.codecs.grad, s.layout.groupSize))) as Program;
  const uniforms = yield* s.uniformsOf(program, (t) => grads.has(t), {}, false);
  let count = 0;
  for (const it of s.launches(program, uniforms, [0, s.layout.groups]))
    if ('program' in it) count += ((yield run(it.program, { ...it.launch, counters: null })) as number[])[0] ?? 0;
  if (!count) return;
  const counts = new Map<string, number>();
  for (const t of grads.keys()) {
    const c = countNonFinite((yield* s.readRange(s.gradSlots[0]!.name, t.offset, t.length)) as FieldArray);
    if (c) counts.set(t.name, c);
  }
  throw new NonFiniteError(counts);
}

/**
 * The arena's own gradient regions on the device (Session.deviceGradients): a backward pass writes
 * each tensor's gradient there, and a step on them moves nothing.
 */
export function arenaGradients<H extends Hyper>(s: Held<H>): Record<string, DeviceGradient> {
  const b = s.backend;
  if (!b.native)
    throw new TypeError(
      `deviceGradients: backend ${b.name} has no device buffers a caller can write (use WebGpuBackend)`,
    );
  if (s.options.gradientRelease)
    throw new Error('deviceGradients: with gradient release the arena holds no gradients (stepTensor takes each one)');
  const slot = s.gradSlots[0]!,
    sb = storageBytes[slot.storage],
    dtype = slot.storage === 'f32' ? ('f32' as const) : ('bf16' as const);
  return Object.fromEntries(
    s.layout.tensors.map((t) => {
      const [p, ...more] = s.piecesOf(t);
      if (!p || more.length)
        throw new RangeError(
          `deviceGradients: tensor ${shown(t.name)} spans ${1 + more.length} chunks of the arena (the device binds at most ${b.limits?.maxBindingBytes} bytes at once), so its gradient has no single place; pass it to step() as a buffer of your own`,
        );
      const n = b.native!(p.chunk.buffers[slot.name]!);
      return [t.name, { buffer: n.buffer, offset: n.offset + p.at * sb, dtype }];
    }),
  );
}
