// A step's items on gpu.js in webgpu mode (Backend.submit): gpu.js has no command encoder, so a
// "submission" is its items one after the other: a launch as `run`, with its counts added into
// `launch.counters` here (gpu.js sums counters per group and returns them: a small read-back, as
// runtime/io.ts does for every backend without counters on the device), a reduction pass's combine
// included (gpujs/launch.ts); a copy through the host (nothing here sends copies: they come from
// device gradients, which gpu.js has no `wrap` for). A combine item is refused: the passes'
// launches combine (`combinesInLaunches`).

import type { Backend, DeviceBuffer, Item, Program } from '../backend.ts';
import { BackendError } from '../backend.ts';

export async function submitItems<B extends DeviceBuffer, P extends Program>(
  b: Backend<B, P>,
  items: readonly Item<B, P>[],
): Promise<void> {
  for (const it of items) {
    if ('combine' in it)
      throw new BackendError(
        `${b.name}.submit: a combine item (the passes' launches combine here: combinesInLaunches)`,
      );
    else if ('copy' in it) {
      const { from, fromAt, to, toAt } = it.copy;
      await b.write(to, await b.read(from, fromAt, it.length), toAt);
    } else {
      const { counters, ...launch } = it.launch;
      const counts = await b.run(it.program, { ...launch, counters: null });
      if (counters && counts.length) {
        const old = await b.read(counters, 0, counts.length);
        await b.write(
          counters,
          Uint32Array.from(counts, (n, i) => (old[i]! + n) >>> 0),
        );
      }
    }
  }
}
