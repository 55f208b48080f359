// Every documented example runs, and prints the figures its comments quote.
import { describe, expect, it } from 'vitest';
import { codeBlocks, runBlocks } from './blocks.ts';

describe('documentation examples run as written', () => {
  it('docs/compiler.md', () => {
    expect(codeBlocks('docs/compiler.md').length).toBeGreaterThanOrEqual(5);
    expect(runBlocks('docs/compiler.md')).toContain('f32 u32 f32');
  }, 60_000);

  it('docs/optimizers.md (7.125 and 5.125 bytes per parameter)', () => {
    const n = codeBlocks('docs/optimizers.md').length;
    expect(n).toBeGreaterThanOrEqual(4);
    const lines = runBlocks('docs/optimizers.md').trim().split('\n');
    expect(lines[0]).toMatch(/^0 -?\d\S* 7\.125$/);
    expect(lines[1]).toBe('5.125');
    expect(lines).toContain('6.125 8.3125 6.125 7.1875 8.3125'); // rmsprop … ademamix
    expect(lines.at(-1)).toBe('9'); // Adagrad with an f32 sum
    expect(lines).toHaveLength(n);
  }, 60_000);

  it('docs/api.md (shapes, checkpoint files, threads, defineOptimizer, a codec as state, props, TF.js)', () => {
    const lines = runBlocks('docs/api.md').trim().split('\n');
    expect(lines).toHaveLength(codeBlocks('docs/api.md').length + 2); // two blocks print twice
    expect(lines[0]).toBe('w:6x4 b:4');
    expect(Number(lines[1])).toBeCloseTo(0.01, 4);
    expect(lines.slice(2, 4)).toEqual(['true 1', 'js-threads(2) true']);
    expect(lines[4]).toMatch(/ m=1 m_scale=0\.0625 v=1 v_scale=0\.0625 vmax=4 /);
    expect(lines[5]).toBe('amsgrad: betas must be in [0, 1), got 0.9,1');
    expect(lines[6]).toMatch(/^2 0\.99/);
    expect(lines.slice(7)).toEqual(['0.333984375', 'true']);
  }, 120_000);

  it('README.md', () => {
    const out = runBlocks('README.md');
    expect(out.split('\n')[0]).toBe('7.125');
    expect(out).toContain('(func (export "run")'); // the kernel source, WebAssembly text on Node
  }, 60_000);
});
