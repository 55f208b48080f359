import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adamw, lion, sgd } from '../optim/index.ts';
import { loadCheckpointFile, saveCheckpointFile } from './checkpoint.ts';
import { createOptimizer, loadOptimizer, saveFp32 } from './optimizer.ts';
import { CheckpointError, decode } from './safetensors.ts';
import { uniformF32 } from '../props/prng.ts';

const rand = (n: number, seed = 1) => uniformF32(n, seed);

async function state(opt: Awaited<ReturnType<typeof createOptimizer>>) {
  const out: Record<string, number[]> = {};
  for (const f of opt.fields) out[f.name] = [...(await opt.readField(f.name))];
  return { out, steps: [...opt.steps] };
}

describe('checkpoints (safetensors)', () => {
  for (const [name, def] of [
    ['adamw', adamw({ lr: 1e-2 })],
    ['lion', lion()],
    ['sgd', sgd({ lr: 0.1, momentum: 0.9 })],
  ] as [string, Parameters<typeof createOptimizer>[0]][]) {
    it(`${name}: save → load → step is bit-identical to stepping without the round trip`, async () => {
      const params = { w: { data: rand(300), shape: [10, 30] }, b: rand(10, 2) };
      const a = await createOptimizer(def, params);
      for (let s = 0; s < 3; s++) await a.step({ w: rand(300, s + 5), b: rand(10, s + 9) });
      const b = await loadOptimizer(await a.save());
      expect(await state(b)).toEqual(await state(a));
      for (let s = 0; s < 2; s++) {
        const g = { w: rand(300, 40 + s), b: rand(10, 50 + s) };
        await a.step(g);
        await b.step(g);
      }
      expect(await state(b)).toEqual(await state(a));
    });
  }

  it('AdamW checkpoint is <= 5.2 bytes per parameter, and readable as plain safetensors', async () => {
    const n = 1 << 16;
    const opt = await createOptimizer(adamw(), { w: rand(n) });
    await opt.step({ w: rand(n, 3) });
    const bytes = await opt.save();
    console.log(`AdamW checkpoint: ${(bytes.length / n).toFixed(4)} bytes/param`);
    expect(bytes.length / n).toBeLessThanOrEqual(5.2);
    const d = decode(bytes);
    expect(d.tensors.get('w')!.dtype).toBe('BF16');
    expect(d.tensors.get('w::p_ecc')!.dtype).toBe('I8');
    const fp32 = decode(await saveFp32(opt));
    expect(fp32.tensors.get('w')!.dtype).toBe('F32');
    expect([...(fp32.tensors.get('w')!.data as Float32Array)]).toEqual([...(await opt.exportFp32()).w!]);
  });

  it('a corrupted or truncated file throws a clear error and changes nothing', async () => {
    const opt = await createOptimizer(adamw(), { w: rand(256) });
    await opt.step({ w: rand(256, 2) });
    const good = await opt.save();
    await opt.step({ w: rand(256, 3) });
    const before = await state(opt);
    const corrupt = good.slice();
    corrupt[corrupt.length - 5]! ^= 0x40;
    await expect(opt.load(corrupt)).rejects.toThrow(/checksum mismatch/);
    await expect(opt.load(good.slice(0, good.length - 100))).rejects.toThrow(CheckpointError);
    await expect(opt.load(good.slice(0, 5))).rejects.toThrow(/too short/);
    const header = good.slice();
    header[12] = 0x7b; // break the JSON
    await expect(opt.load(header)).rejects.toThrow(/not valid JSON|checksum|offsets/);
    const other = await createOptimizer(adamw(), { w: rand(255) });
    await expect(other.load(good)).rejects.toThrow(
      /the tensors \(names and shapes, in order\) is \[\["w",\[256\]\]\] in the file but \[\["w",\[255\]\]\] here/,
    );
    expect(await state(opt)).toEqual(before);
  });

  it('writes to disk atomically and reads back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flashoptim-'));
    const path = join(dir, 'opt.safetensors');
    const opt = await createOptimizer(adamw(), { w: rand(100) });
    await opt.step({ w: rand(100, 2) });
    await saveCheckpointFile(opt, path);
    const copy = await createOptimizer(adamw(), { w: rand(100, 7) });
    await loadCheckpointFile(copy, path);
    expect(await state(copy)).toEqual(await state(opt));
    const bytes = await readFile(path);
    await writeFile(path, bytes.subarray(0, bytes.length - 1));
    await expect(loadCheckpointFile(copy, path)).rejects.toThrow(CheckpointError);
    expect(await state(copy)).toEqual(await state(opt));
  });
});
