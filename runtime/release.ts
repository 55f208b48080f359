// Gradient release: the arena holds no gradient. Each tensor's launch of the windowed kernel
// (optim/fuse.ts, windowGrad) reads its gradient where it is: the caller's GPUBuffer, bound as it
// is (no copy), or a buffer of its own for a host array. stepTensor sends one such launch as each
// gradient is ready; step() sends one per tensor in ONE submission, so a framework that keeps its
// gradients on the GPU pays no copy and the optimizer holds 2 bytes per parameter less.

import type { FieldArray } from '../compiler/ir/kernel.ts';
import type { Hyper } from '../optim/define.ts';
import type { TensorSlot } from './arena.ts';
import type { DeviceBuffer, Item } from './backends/backend.ts';
import type { Gradient } from './gradients.ts';
import type { Held } from './held.ts';
import type { Work } from './io.ts';
import { read, write } from './io.ts';
import { NonFiniteError, countNonFinite } from './numerics.ts';

const dtype = (s: string) => (s === 'u16' ? 'bf16' : 'f32');

/** One launch per tensor (per chunk it spans) in `grads`, in one submission where the backend has them; then their steps count. */
export function* releasedStep<H extends Hyper>(
  s: Held<H>,
  grads: ReadonlyMap<TensorSlot, Gradient>,
  refuse: boolean,
  sched: Partial<H>,
): Work<void> {
  const program = s.release!,
    slot = s.gradSlots[0]!,
    G = s.layout.groupSize;
  const active = (t: TensorSlot) => grads.has(t);
  // Every launch reads the same uniform rows (its own tensor's among them): built and checked once.
  const uniforms = yield* s.uniformsOf(program, active, sched);
  const temps: DeviceBuffer[] = [];
  try {
    const items: Item[] = [];
    for (const [t, g] of grads) {
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
      }
      for (const p of s.piecesOf(t)) {
        let window: DeviceBuffer;
        if ('device' in g) {
          // The same caller buffer next step gives the same view (state.ts keeps its launch plan).
          const n = s.backend.native?.(g.device);
          window = n
            ? (s.kept.get(s.kept.key('window', n.buffer, n.offset, g.device.storage, t.row, p.from), () =>
                s.sub(g.device, p.from, p.length),
              ) as DeviceBuffer)
            : s.sub(g.device, p.from, p.length);
        } else {
          window = s.backend.alloc(slot.storage, p.length);
          temps.push(window);
          yield write(window, g.host.subarray(p.from, p.from + p.length), 0);
        }
        const groups = [p.at / G, Math.ceil((p.at + p.length) / G)] as const;
        for (const it of s.launches(
          program,
          uniforms,
          [p.chunk.groups[0] + groups[0], p.chunk.groups[0] + groups[1]],
          () => ({ [slot.name]: window }),
        ))
          // Elements past the tensor's end (the arena's padding) are neither read nor written.
          items.push('program' in it ? { ...it, launch: { ...it.launch, length: p.at + p.length } } : it);
      }
    }
    yield* s.send(items, active);
  } finally {
    // A buffer freed after its submission stays alive until the device has finished with it.
    for (const b of temps) s.backend.free(b);
  }
}
