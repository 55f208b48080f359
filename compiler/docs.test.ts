// docs/compiler.md promises its code blocks run: extract every ```ts block and run each with tsx
// from the repository root (the blocks import './index.ts'), failing on any throw.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const page = readFileSync(join(root, 'docs/compiler.md'), 'utf8');
const blocks = [...page.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe('docs/compiler.md', () => {
  it('has code blocks', () => expect(blocks.length).toBeGreaterThanOrEqual(5));
  it('every code block runs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'compiler-docs-'));
    try {
      // One tsx process (it starts in ~1 s) imports the blocks one after another, each its own module.
      blocks.forEach((b, i) => writeFileSync(join(dir, `block${i + 1}.mts`), b.replace(/from '\.\//g, `from '${root}`)));
      const file = join(dir, 'all.mts');
      writeFileSync(file, blocks.map((_, i) => `await import('./block${i + 1}.mts');`).join('\n') + '\nexport {};\n');
      const out = execFileSync(join(root, 'node_modules/.bin/tsx'), [file], { cwd: root, encoding: 'utf8' });
      expect(out).toContain('f32 u32 f32');
    } finally { rmSync(dir, { recursive: true }); }
  });
});
