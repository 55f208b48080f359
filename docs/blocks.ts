// Documentation promises its code blocks run as written. This extracts every ```ts block of a
// page and runs them in one tsx process (each its own module), from the repository root, with
// './…' and 'flashoptim' imports pointed at this checkout. Used by docs/docs.test.ts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

export function codeBlocks(page: string): string[] {
  return [...readFileSync(join(root, page), 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** Run every block of `page`; returns what they printed. Throws (with stderr) if any block throws. */
export function runBlocks(page: string): string {
  // Inside node_modules/ (ignored), so a block's own packages (TF.js, …) resolve as in a project.
  const dir = mkdtempSync(join(root, 'node_modules', '.flashoptim-docs-'));
  try {
    const blocks = codeBlocks(page).map((b) =>
      b
        .replace(
          /from 'flashoptim\/([a-z]+)'/g,
          (_, sub) =>
            `from '${root}${({ tfjs: 'tfjs/adapter.ts', threads: 'runtime/backends/js/threads.ts', props: 'props/index.ts', compiler: 'compiler/index.ts' } as Record<string, string>)[sub]}'`,
        )
        .replace(/from 'flashoptim'/g, `from '${root}index.ts'`)
        .replace(/from '\.\//g, `from '${root}`),
    );
    blocks.forEach((b, i) => writeFileSync(join(dir, `block${i + 1}.mts`), b));
    const file = join(dir, 'all.mts');
    writeFileSync(file, blocks.map((_, i) => `await import('./block${i + 1}.mts');`).join('\n') + '\nexport {};\n');
    return execFileSync(join(root, 'node_modules/.bin/tsx'), [file], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, XDG_RUNTIME_DIR: process.env['XDG_RUNTIME_DIR'] ?? '/tmp/xdg' },
    });
  } finally {
    rmSync(dir, { recursive: true });
  }
}
