// A session is a transaction (runtime/session.ts): calls made without awaiting the previous ones
// give exactly what awaiting each in turn gives, bit for bit, on every kind of backend (the JS
// backend's two engines, worker threads, WebGPU, gpu.js), and concurrent saves to one file always
// leave one complete, loadable checkpoint.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { adamw } from '../optim/index.ts';
import { uniformF32 } from '../props/prng.ts';
import type { Backend } from '../runtime/backends/backend.ts';
import { loadCheckpointFile, saveCheckpointFile } from '../runtime/checkpoint.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import { availableBackends } from './backends.ts';

const backends = (await availableBackends()).filter((b) =>
  ['js', 'js-wasm', 'js-threads', 'webgpu', 'gpujs-cpu'].includes(b.name),
);
const params = () => ({ w: { data: uniformF32(300, 1), shape: [10, 30] }, b: uniformF32(10, 2) });
const grads = (s: number) => ({ w: uniformF32(300, 10 + s, 0.1), b: uniformF32(10, 20 + s, 0.1) });

/** One script of calls; `go` is either "await each" or "fire all, then await them together". */
async function script(backend: Backend, together: boolean) {
  const opt = await createOptimizer(adamw({ lr: 1e-2 }), params(), { backend });
  const calls: (() => Promise<unknown>)[] = [
    () => opt.step(grads(0)),
    () => opt.setHyper({ lr: 5e-3 }),
    () => opt.step(grads(1)),
    () => opt.save(),
    () => opt.step(grads(2)),
    () => opt.exportFp32(),
    () => opt.importFp32({ b: uniformF32(10, 99) }),
    () => opt.step(grads(3)),
    () => opt.readParams(),
    () => opt.setHyper({ weightDecay: 0 }, 0),
    () => opt.step(grads(4)),
    () => opt.save(),
  ];
  let results: unknown[];
  if (together) results = await Promise.all(calls.map((c) => c()));
  else {
    results = [];
    for (const c of calls) results.push(await c());
  }
  // A load in the middle of steps: from the first save, then two more steps.
  const loadThenStep = together
    ? await Promise.all([opt.load(results[3] as Uint8Array), opt.step(grads(5)), opt.step(grads(6)), opt.save()])
    : [await opt.load(results[3] as Uint8Array), await opt.step(grads(5)), await opt.step(grads(6)), await opt.save()];
  await opt.dispose();
  return { results, last: loadThenStep[3] };
}

describe.each(backends)('backend $name', (cb) => {
  it('overlapping calls (step, setHyper, save, load, import, export) equal sequential ones bit for bit', async () => {
    const a = await cb.create(),
      b = await cb.create();
    const seq = await script(a, false),
      par = await script(b, true);
    expect(par.results).toEqual(seq.results);
    expect(par.last).toEqual(seq.last);
    a.dispose();
    b.dispose();
  });

  it('calls after dispose() throw a clear error; dispose waits for calls already made', async () => {
    const backend = await cb.create();
    const opt = await createOptimizer(adamw(), params(), { backend });
    const pending = opt.step(grads(0));
    const disposed = opt.dispose();
    await pending;
    await disposed;
    await expect(opt.step(grads(1))).rejects.toThrow(/step: this optimizer was disposed/);
    expect(() => opt.setHyper({ lr: 1 })).toThrow(/disposed/);
    backend.dispose();
  });
});

describe('checkpoint files', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('20 rounds of two concurrent saves to one path always leave one complete checkpoint, equal to one of the two', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flashoptim-saves-'));
    dirs.push(dir);
    const path = join(dir, 'opt.safetensors');
    const a = await createOptimizer(adamw(), params()),
      b = await createOptimizer(adamw(), params());
    await a.step(grads(0));
    await b.step(grads(1));
    const [sa, sb] = [await a.save(), await b.save()];
    const reader = await createOptimizer(adamw(), params());
    for (let round = 0; round < 20; round++) {
      await Promise.all([saveCheckpointFile(a, path), saveCheckpointFile(b, path)]);
      await loadCheckpointFile(reader, path);
      const got = await reader.save();
      expect(
        [sa, sb].some((s) => s.length === got.length && s.every((x, i) => x === got[i])),
        `round ${round}`,
      ).toBe(true);
    }
  });
});
