#!/usr/bin/env node
// The `flashoptim` command: cli/main.ts's `main`, which sets the exit status.
// In a checkout (cli/main.ts beside this folder, tsx installed: a clone after `npm ci`) the
// TypeScript sources run through tsx, so the command is never an older build than the code it
// sits in; otherwise (an installed package, whose dev dependencies are absent) the compiled CLI
// in dist/cli/main.js (the tsc build) runs.

import { existsSync } from 'node:fs';

async function entry() {
  const source = new URL('../cli/main.ts', import.meta.url);
  if (existsSync(source)) {
    try {
      // Both of tsx's hooks, as the tsx command has: ESM for the sources, CJS because the bench's
      // TF.js loads tfjs-core's extensionless ESM build through require() (tfjs/gradients.ts).
      const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]);
      esm.register();
      cjs.register();
      return source;
    } catch (e) {
      if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
    }
  }
  const compiled = new URL('../dist/cli/main.js', import.meta.url);
  if (existsSync(compiled)) return compiled;
  process.stderr.write('flashoptim: neither dist/cli/main.js (npm run build) nor tsx (npm ci) is installed\n');
  process.exit(1);
}

const { main } = await import((await entry()).href);
process.exitCode = await main(process.argv.slice(2));
