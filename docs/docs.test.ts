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
    expect(lines).toHaveLength(n);
  }, 60_000);

  it('README.md', () => {
    const out = runBlocks('README.md');
    expect(out.split('\n')[0]).toBe('7.125');
    expect(out).toContain('(func (export "run")'); // the kernel source, WebAssembly text on Node
  }, 60_000);
});
