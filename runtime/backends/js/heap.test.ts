import { describe, expect, it } from 'vitest';
import { Heap } from './heap.ts';
import { JsBackend } from './js.ts';

describe('Heap (the wasm engine memory)', () => {
  it('hands out aligned, disjoint, zeroed blocks, reuses freed ones and coalesces neighbours', () => {
    const h = new Heap();
    const a = h.alloc(10),
      b = h.alloc(100),
      c = h.alloc(1);
    for (const p of [a, b, c]) expect(p % 16).toBe(0);
    expect(a).toBeGreaterThan(0); // 0 means "no table" to a kernel
    expect(b).toBeGreaterThanOrEqual(a + 16);
    expect(c).toBeGreaterThanOrEqual(b + 112);
    new Uint8Array(h.memory.buffer, b, 100).fill(7);
    h.release(b);
    const b2 = h.alloc(50); // first fit: b's block again, zeroed
    expect(b2).toBe(b);
    expect(new Uint8Array(h.memory.buffer, b2, 50).every((x) => x === 0)).toBe(true);
    h.release(b2);
    h.release(a);
    expect(h.alloc(120)).toBe(a); // a and b merged into one free block
    expect(h.used).toBe(128 + 16);
  });

  it("a block bumped from the top where a released block was comes back zeroed (a fresh optimizer started with the old one's bytes as its state)", async () => {
    const h = new Heap();
    const a = h.alloc(64);
    new Uint8Array(h.memory.buffer, a, 64).fill(9);
    h.release(a); // the top block: the bump pointer moves back over it
    const b = h.alloc(64);
    expect(b).toBe(a);
    expect(new Uint8Array(h.memory.buffer, b, 64).every((x) => x === 0)).toBe(true);
    // The same through the public API: a second optimizer on a shared backend starts from zero states.
    const { createOptimizer } = await import('../../optimizer.ts');
    const { adamw } = await import('../../../optim/index.ts');
    const backend = new JsBackend({ engine: 'wasm' });
    const first = await createOptimizer(adamw(), { w: new Float32Array(1000).fill(3) }, { backend });
    await first.step({ w: new Float32Array(1000).fill(1) });
    await first.exportFp32(); // allocates and releases a temporary at the top
    const second = await createOptimizer(adamw(), { w: new Float32Array(1000).fill(3) }, { backend });
    for (const f of second.fields)
      if (f.owner !== 'p')
        expect(
          [...(await second.readField(f.name))].every((x) => x === 0),
          f.name,
        ).toBe(true);
  });

  it('grows memory on demand and refuses more than wasm32 can address', () => {
    const h = new Heap();
    const p = h.alloc(3 << 20);
    expect(h.memory.buffer.byteLength).toBeGreaterThanOrEqual(p + (3 << 20));
    expect(() => h.alloc(2 ** 32)).toThrow(/4 GiB.*engine: 'js'|4 GiB.*'js' engine/);
  });

  it('JsBackend buffers stay readable across growth (views are made on demand)', async () => {
    const js = new JsBackend({ engine: 'wasm' });
    const x = js.alloc('f32', 4);
    await js.write(x, Float32Array.of(1, 2, 3, 4));
    js.alloc('u8', 5 << 20); // grows (and detaches the old ArrayBuffer)
    expect(Array.from(await js.read(x))).toEqual([1, 2, 3, 4]);
  });
});
