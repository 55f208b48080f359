// docs/optimizers.md promises its snippets run as written: extract every ```ts block and run them
// with tsx from the repository root (the blocks import './index.ts'), and check the figures the
// comments quote (7.125 and 5.125 bytes per parameter).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const page = readFileSync(join(root, 'docs/optimizers.md'), 'utf8');
const blocks = [...page.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe('docs/optimizers.md', () => {
  it('has code blocks', () => expect(blocks.length).toBeGreaterThanOrEqual(4));
  it('every code block runs and prints the figures it quotes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'optim-docs-'));
    try {
      blocks.forEach((b, i) => writeFileSync(join(dir, `block${i + 1}.mts`), b.replace(/from '\.\//g, `from '${root}`)));
      const file = join(dir, 'all.mts');
      writeFileSync(file, blocks.map((_, i) => `await import('./block${i + 1}.mts');`).join('\n') + '\nexport {};\n');
      const out = execFileSync(join(root, 'node_modules/.bin/tsx'), [file], { cwd: root, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp/xdg' } });
      const lines = out.trim().split('\n');
      expect(lines[0]).toMatch(/^0 -?\d\S* 7\.125$/);
      expect(lines[1]).toBe('5.125');
      expect(lines).toHaveLength(blocks.length);
    } finally { rmSync(dir, { recursive: true }); }
  }, 60_000);
});
