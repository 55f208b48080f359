// The package as a user gets it: `npm pack` (whose prepack builds dist/), the tarball installed in a
// fresh project without dev dependencies or any optional peer, and there: a plain node ESM script,
// a CommonJS require, a TypeScript `module: nodenext` consumer, a browser bundle, the CLI, and the
// sizes (printed; README quotes them). The consumers are in test/packaging/.

import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixtures = join(root, 'test/packaging');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, string | Record<string, string>>;
  bin: Record<string, string>;
  peerDependencies: Record<string, string>;
};

// npm run from vitest inherits npm_* variables (npm_config_…) that would configure the child npm.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}
function run(cmd: string, args: readonly string[], cwd: string): Ran {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
function ok(cmd: string, args: readonly string[], cwd: string): string {
  const r = run(cmd, args, cwd);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Bytes of every file under `dir` (what the install put on disk). */
function bytesUnder(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? bytesUnder(p) : e.isFile() ? statSync(p).size : 0;
  }
  return n;
}

interface Packed {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string }[];
}

let work: string, app: string, packed: Packed;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'flashoptim-pack-'));
  app = join(work, 'app');
  // Without dist/, the tarball's build can only come from prepack.
  rmSync(join(root, 'dist'), { recursive: true, force: true });
  packed = (JSON.parse(ok('npm', ['pack', '--json', '--pack-destination', work], root)) as Packed[])[0]!;
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  // No --omit=peer: a peer that lost its `optional` mark would be installed, and fail the check below.
  ok(
    'npm',
    [
      'install',
      '--omit=dev',
      '--engine-strict',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      join(work, packed.filename),
    ],
    app,
  );
  for (const f of readdirSync(fixtures)) copyFileSync(join(fixtures, f), join(app, f));
}, 300_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed and installed package', () => {
  test('the tarball: dist/ with every export and the bin, and no sources, tests, benches or scratch', () => {
    const files = new Set(packed.files.map((f) => f.path));
    const targets = Object.values(manifest.exports).flatMap((t) => (typeof t === 'string' ? [t] : Object.values(t)));
    for (const t of [...targets, ...Object.values(manifest.bin), './dist/cli/main.js'])
      expect(files.has(t.replace(/^\.\//, '')), `${t} is not in the tarball`).toBe(true);
    const unwanted = [...files].filter(
      (f) =>
        /\.(test|prop|fuzz)\.|(^|\/)(test|tests|examples|scratch|tmp|out)\//.test(f) ||
        /^bench\//.test(f) ||
        /\.(log|tmp|tgz)$/.test(f) ||
        (/\.[cm]?ts$/.test(f) && !f.endsWith('.d.ts')),
    );
    expect(unwanted).toEqual([]);
  });

  test('sizes, with no optional peer installed', () => {
    const installed = bytesUnder(join(app, 'node_modules'));
    const packages = readdirSync(join(app, 'node_modules')).filter((d) => !d.startsWith('.'));
    console.log(
      `flashoptim ${packed.filename}: tarball ${(packed.size / 1e6).toFixed(2)} MB ` +
        `(${(packed.unpackedSize / 1e6).toFixed(2)} MB unpacked, ${packed.files.length} files); ` +
        `installed node_modules ${(installed / 1e6).toFixed(1)} MB (${packages.join(', ')})`,
    );
    for (const peer of Object.keys(manifest.peerDependencies))
      expect(existsSync(join(app, 'node_modules', peer)), `optional peer ${peer} was installed`).toBe(false);
    expect(packed.size).toBeLessThan(2e6);
    expect(installed).toBeLessThan(20e6); // webgpu alone is 132 MB, gpu.js with its own webgpu 88
  });

  test('a plain node ESM script: AdamW on the JS backend, a step, a checkpoint file; GPU backends say what to install', () => {
    const out = JSON.parse(ok(process.execPath, ['consumer.mjs'], app));
    expect(out).toMatchObject({
      engine: 'wasm', // wabt, a dependency, compiles the kernel
      restored: true,
      loaded: true,
      shape: [8, 12],
      webgpu: `WebGpuBackend.create: the 'webgpu' package is not installed; run npm install webgpu@${manifest.peerDependencies['webgpu']}`,
      gpujs: `GpujsBackend.create: the 'gpu.js' package is not installed; run npm install gpu.js@${manifest.peerDependencies['gpu.js']}`,
    });
    expect(out.b0).toBeCloseTo(0.01, 3); // Adam's first step moves by lr against the gradient's sign
  });

  test("CommonJS require('flashoptim') works, or fails saying the package is an ES module", () => {
    const r = run(process.execPath, ['consumer.cjs'], app);
    if (r.status === 0) expect(r.stdout.trim()).toBe('function');
    // Node before 20.19 refuses any ES module; later ones one with top-level await.
    else expect(r.stderr).toMatch(/code: 'ERR_REQUIRE_(ESM|ASYNC_MODULE)'/);
  });

  test('a TypeScript consumer with module nodenext type-checks against the declarations', () => {
    const tsconfig = {
      compilerOptions: {
        module: 'nodenext',
        target: 'es2022',
        lib: ['es2023', 'dom'],
        strict: true,
        noEmit: true,
        skipLibCheck: false, // our .d.ts files are checked too
        types: [],
      },
      files: ['consumer.mts'],
    };
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(tsconfig));
    ok(join(root, 'node_modules/.bin/tsc'), ['-p', app], app);
  });

  test('esbuild bundles it for the browser; the one Node name left is the fs inside wabt', async () => {
    // wabt (an Emscripten build) names `fs` on its Node-only branch, which never runs in a browser;
    // esbuild (like webpack) insists on resolving it unless told it is external. Vite needs nothing.
    const r = await esbuild.build({
      absWorkingDir: app,
      entryPoints: ['browser.mjs'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
      external: ['fs'],
    });
    const inputs = Object.keys(r.metafile.inputs);
    expect(inputs).toContain('node_modules/flashoptim/dist/index.js');
    const external = Object.entries(r.metafile.inputs).flatMap(([from, i]) =>
      i.imports.filter((m) => m.external).map((m) => `${from} → ${m.path}`),
    );
    expect(external).toEqual(['node_modules/wabt/index.js → fs']);
    console.log(`browser bundle: ${(r.outputFiles[0]!.contents.length / 1e6).toFixed(2)} MB`);
  });

  test('the installed flashoptim command runs the compiled CLI', () => {
    expect(ok(join(app, 'node_modules/.bin/flashoptim'), ['--help'], app)).toMatch(/^Usage: flashoptim/);
  });
});
