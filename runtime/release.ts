// Gradient release: the arena holds no gradient. Each tensor's launch of the windowed kernel
// (optim/fuse.ts, windowGrad) reads its gradient where it is: the caller's GPUBuffer, bound as it
// is (no copy), or a buffer of its own for a host array. stepTensor sends one such launch as each
// gradient is ready; step() sends one per tensor in ONE submission, so a framework that keeps its
// gradients on the GPU pays no copy and the optimizer holds 2 bytes per parameter less.

import type { FieldArray } from '../compiler/ir/kernel.ts';
import type { Hyper } from '../optim/define.ts';
import type { FieldSlot, TensorSlot } from './arena.ts';
import type { Backend, DeviceBuffer, Item, Launch, Program } from './backends/backend.ts';
import type { Gradient } from './gradients.ts';
import type { Work } from './io.ts';
import { read, run, submit, write } from './io.ts';
import { NonFiniteError, countNonFinite } from './numerics.ts';

/** What a released step needs of the optimizer's state (runtime/state.ts). */
export interface Releasing<H extends Hyper> {
  readonly backend: Backend;
  readonly release: Program | null;
  readonly gradSlots: readonly FieldSlot[];
  readonly buffers: Readonly<Record<string, DeviceBuffer>>;
  readonly steps: Int32Array;
  launchOf(
    program: Program,
    bindings: Readonly<Record<string, DeviceBuffer>>,
    active: (t: TensorSlot) => boolean,
    groups: readonly [number, number],
    sched: Partial<H>,
  ): Work<Launch>;
}

const dtype = (s: string) => (s === 'u16' ? 'bf16' : 'f32');

/** One launch per tensor in `grads`, in one submission where the backend has them; then their steps count. */
export function* releasedStep<H extends Hyper>(
  s: Releasing<H>,
  grads: ReadonlyMap<TensorSlot, Gradient>,
  refuse: boolean,
  sched: Partial<H>,
): Work<void> {
  const program = s.release!,
    slot = s.gradSlots[0]!;
  const active = (t: TensorSlot) => grads.has(t);
  // Every launch reads the same uniform rows (its own tensor's among them): built and checked once.
  const shared = yield* s.launchOf(program, s.buffers, active, [0, 0], sched);
  const temps: DeviceBuffer[] = [];
  try {
    const items: Item[] = [];
    for (const [t, g] of grads) {
      let window: DeviceBuffer;
      if ('device' in g) {
        if (g.device.storage !== slot.storage)
          throw new TypeError(
            `gradient "${t.name}": with gradient release a device gradient is read where it is, so it must be ${dtype(slot.storage)} (the gradient storage), got ${dtype(g.device.storage)}`,
          );
        if (refuse) {
          // The 'error' policy reads it back and counts (this waits for the device).
          const c = countNonFinite((yield read(g.device, 0, t.length)) as FieldArray);
          if (c) throw new NonFiniteError(new Map([[t.name, c]]));
        }
        window = g.device;
      } else {
        window = s.backend.alloc(slot.storage, t.length);
        temps.push(window);
        yield write(window, g.host, 0);
      }
      // Elements past the tensor's end (the arena's padding) are neither read nor written.
      const launch = {
        ...shared,
        bindings: { ...s.buffers, [slot.name]: window },
        groups: t.groups,
        length: t.offset + t.length,
      };
      items.push({ program, launch });
    }
    if (s.backend.submit) yield submit(items);
    else for (const it of items) if ('program' in it) yield run(it.program, it.launch);
    for (const t of grads.keys()) s.steps[t.row]!++;
  } finally {
    // A buffer freed after its submission stays alive until the device has finished with it.
    for (const b of temps) s.backend.free(b);
  }
}
