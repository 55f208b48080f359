// The `flashoptim` command as users run it: the real bin (bin/flashoptim.mjs) in a child process,
// on checkpoints made through the public API. The float32 safetensors are read back by a reader
// written here from the format's description (not runtime/safetensors.ts, which wrote them).

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';
import { beforeAll, describe, expect, it } from 'vitest';
import { adamw, createOptimizer, saveCheckpointFile } from '../index.ts';

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../bin/flashoptim.mjs');

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run the bin itself (its shebang), from a folder that is not the repository. */
function flashoptim(...args: string[]): Promise<Run> {
  return new Promise((done) => {
    execFile(BIN, args, { cwd: tmpdir(), maxBuffer: 64 << 20 }, (e, stdout, stderr) =>
      done({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** safetensors as its README describes it: u64 LE header length, JSON header, then the data. */
function readSafetensors(b: Uint8Array) {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const headerText = new TextDecoder().decode(b.subarray(8, 8 + n));
  const header = JSON.parse(headerText) as Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>;
  const tensors = new Map<string, { dtype: string; shape: number[]; values: number[] }>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [s, e] = t.data_offsets as [number, number];
    const values: number[] = [];
    for (let o = 8 + n + s; o < 8 + n + e; o += 4) values.push(view.getFloat32(o, true));
    tensors.set(name, { dtype: t.dtype, shape: t.shape, values });
  }
  return { n, headerText, header, tensors };
}

describe('flashoptim command', () => {
  let dir: string;
  let ckpt: string;
  let weights: Record<string, Float32Array>;
  let held: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flashoptim-cli-'));
    ckpt = join(dir, 'adamw.safetensors');
    const opt = await createOptimizer(
      adamw({ lr: 1e-2, weightDecay: 0.1 }),
      {
        w: { data: Float32Array.from({ length: 42 }, (_, i) => Math.sin(i)), shape: [6, 7] },
        b: new Float32Array(5).fill(0.5),
      },
      { groups: [{ params: ['b'], hyper: { weightDecay: 0 } }] },
    );
    for (let s = 1; s <= 3; s++)
      await opt.step({
        w: Float32Array.from({ length: 42 }, (_, i) => Math.cos(i * s)),
        b: new Float32Array(5).fill(-s),
      });
    await saveCheckpointFile(opt, ckpt);
    weights = await opt.exportFp32();
    held = opt.memory().bytesPerParam;
  });

  it('--help at the top and on every command', async () => {
    const top = await flashoptim('--help');
    expect(top.code).toBe(0);
    for (const c of ['inspect', 'info', 'convert', 'bench']) {
      expect(top.stdout).toContain(`  ${c} `);
      const r = await flashoptim(c, '--help');
      expect([r.code, r.stderr]).toEqual([0, '']);
      expect(r.stdout).toMatch(new RegExp(`^Usage: flashoptim ${c}`));
    }
  });

  it('inspect adamw --backend wgsl prints a WGSL compute kernel with its stats, no GPU needed', async () => {
    const r = await flashoptim('inspect', 'adamw', '--backend', 'wgsl');
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toContain('@compute');
    expect(r.stdout).toContain('enable subgroups;');
    expect(r.stdout).toContain('// bytes per parameter: 7.125 (the gradient included)');
    expect(r.stdout).toMatch(/\/\/ {3}- subgroups with at least 32 invocations/);
  });

  it('the printed WGSL, stats header included, compiles on a WebGPU device (Dawn; lavapipe in CI)', async () => {
    const r = await flashoptim('inspect', 'adamw', '--backend', 'wgsl');
    const { requestDevice } = await import('../runtime/backends/webgpu/device.ts');
    const { device } = await requestDevice();
    try {
      const info = await device.createShaderModule({ code: r.stdout }).getCompilationInfo();
      expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}: ${m.message}`)).toEqual([]);
    } finally {
      device.destroy();
    }
  });

  it('npx flashoptim in the checkout runs this bin (npm links the package itself; nothing fetched)', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'flashoptim-npx-'));
    const r = await new Promise<Run>((done) =>
      execFile(
        'npx',
        ['--offline', '--cache', cache, 'flashoptim', 'inspect', 'adamw', '--backend', 'wgsl'],
        { cwd: resolve(dirname(BIN), '..'), maxBuffer: 64 << 20 },
        (e, stdout, stderr) => done({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('@compute');
    await rm(cache, { recursive: true, force: true });
  });

  it('inspect --master and --scale change the kernel; the WebAssembly text (header included) assembles', async () => {
    const none = await flashoptim('inspect', 'lion', '--master', 'none');
    expect(none.code).toBe(0);
    expect(none.stdout).not.toContain('p_ecc');
    expect(none.stdout).toContain(';; bytes per parameter: 5.0625');
    const r = await flashoptim('inspect', 'sgd', '--backend', 'wasm', '--master', '32', '--scale', 'f32');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/;; {3}p_ecc +i16/);
    const wabt = await wabtInit();
    const m = wabt.parseWat('inspect.wat', r.stdout, { simd: true, threads: true });
    expect(() => (m.validate as (f: object) => void)({ simd: true, threads: true })).not.toThrow();
    m.destroy();
    const js = await flashoptim('inspect', 'adam', '--backend', 'js');
    expect(js.stdout).toContain('return function run(');
    const gpujs = await flashoptim('inspect', 'sgdw', '--backend', 'gpujs');
    expect(gpujs.stdout).toContain('this.thread.x');
  });

  it('info prints optimizer, options, groups, tensors, steps and bytes per parameter', async () => {
    const r = await flashoptim('info', ckpt);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toContain('optimizer       adamw');
    expect(r.stdout).toContain('masterWeightBits 24, paramDtype bf16, quantize true, groupSize 32, scale bf16');
    expect(r.stdout).toMatch(/w +\[6, 7\] +3 steps/);
    expect(r.stdout).toContain('tensors         2, 47 parameters');
    const j = JSON.parse((await flashoptim('info', ckpt, '--json')).stdout);
    expect(j.optimizer).toBe('adamw');
    expect(j.stepCount).toBe(3);
    expect(j.tensors).toEqual([
      { name: 'w', shape: [6, 7], steps: 3 },
      { name: 'b', shape: [5], steps: 3 },
    ]);
    expect(j.groups.map((g: { params: string[] }) => g.params)).toEqual([['w'], ['b']]);
    expect(j.groups[1].hyper.weightDecay).toBe(0);
    expect(j.fileBytes).toBe((await readFile(ckpt)).length);
    // The 8-bit states and the correction are 1 byte each, the bf16 parameter 2 (the file holds no gradient).
    expect(j.storedBytesPerParam).toMatchObject({ p: 2, p_ecc: 1, m: 1, v: 1 });
    expect(j.loaded.bytesPerParam).toBeCloseTo(held, 4);
  });

  it('convert --fp32 writes float32 safetensors another reader loads: same names, shapes and floats', async () => {
    const out = join(dir, 'weights.safetensors');
    const r = await flashoptim('convert', ckpt, '--fp32', out);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('2 F32 tensors, 47 parameters');
    const f = readSafetensors(new Uint8Array(await readFile(out)));
    expect(f.n % 8).toBe(0); // data 8-byte aligned: the header is padded ...
    expect(f.headerText).toMatch(/} *$/); // ... with spaces
    expect(f.header['__metadata__']).toMatchObject({ format: 'flashoptim-fp32/1' });
    expect([...f.tensors.keys()]).toEqual(['w', 'b']);
    expect(f.header['w']!.data_offsets).toEqual([0, 168]);
    for (const [name, shape] of [
      ['w', [6, 7]],
      ['b', [5]],
    ] as const) {
      const t = f.tensors.get(name)!;
      expect([t.dtype, t.shape]).toEqual(['F32', shape]);
      expect(t.values).toEqual([...weights[name]!]);
    }
    expect((await readdir(dir)).filter((x) => x.endsWith('.tmp'))).toEqual([]); // the temporary file was renamed
  });

  it.each([
    [['frobnicate'], 2, /unknown command "frobnicate"/],
    [[], 2, /missing command/],
    [['inspect', 'adamw', '--bogus'], 2, /unknown option --bogus/],
    [['inspect', 'adamw', '--backend', 'cuda'], 2, /--backend must be one of js, wasm, wgsl, gpujs, got "cuda"/],
    [['inspect', 'adamw', '--master', '16'], 2, /--master must be one of 24, 32, none, got "16"/],
    // Every built-in is listed (optimizers added to optim/index.ts appear too).
    [
      ['inspect', 'adamx'],
      2,
      /unknown optimizer "adamx" \(known: (?=[^)]*\badam,)(?=[^)]*\badamw\b)(?=[^)]*\blion\b)(?=[^)]*\bsgd,)(?=[^)]*\bsgdw\b)/,
    ],
    [['inspect', 'adamw', '--backend'], 2, /option --backend needs a value/],
    [['inspect'], 2, /missing <optimizer>/],
    [['inspect', 'adamw', 'extra'], 2, /unexpected argument "extra"/],
    [['info', '/nonexistent/x.safetensors'], 2, /cannot read checkpoint "\/nonexistent\/x.safetensors": no such file/],
    [['convert', '@ckpt'], 2, /--fp32 <out.safetensors> is required/],
    [['convert', '@ckpt', '--fp32', '/nonexistent/dir/w.safetensors'], 1, /cannot write "\/nonexistent\/dir/],
    [['bench', '--sizes', '40'], 2, /--sizes must be an integer in \[4, 28\], got "40"/],
    [['bench', '--min-seconds', 'soon'], 2, /--min-seconds must be a number in \[0, 3600\], got "soon"/],
  ] as [string[], number, RegExp][])('%j exits %i with one line naming the problem', async (args, code, message) => {
    const r = await flashoptim(...args.map((a) => (a === '@ckpt' ? ckpt : a)));
    expect(r.code).toBe(code);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^flashoptim[^\n]*\n$/);
    expect(r.stderr).toMatch(message);
  });

  it('a corrupted checkpoint is refused in one line (exit 1), naming the checksum', async () => {
    const bad = join(dir, 'bad.safetensors');
    const bytes = new Uint8Array(await readFile(ckpt));
    bytes[bytes.length - 3]! ^= 0x10;
    await writeFile(bad, bytes);
    for (const args of [
      ['info', bad],
      ['convert', bad, '--fp32', join(dir, 'never.safetensors')],
    ]) {
      const r = await flashoptim(...args);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^flashoptim (info|convert): [^\n]*checksum mismatch[^\n]*\n$/);
    }
    expect(await readdir(dir)).not.toContain('never.safetensors');
  });

  it("convert names a custom optimizer's checkpoint as one it cannot load", async () => {
    const { defineOptimizer, dsl } = await import('../index.ts');
    const plain = defineOptimizer({
      name: 'plain',
      hyper: { lr: 0.1 },
      state: {},
      uniforms: () => ({}),
      update: ({ p, g }, u) => ({ p: dsl.sub(p!, dsl.mul(u('lr'), g!)) }),
    });
    const opt = await createOptimizer(plain(), { w: new Float32Array(8).fill(1) });
    const path = join(dir, 'plain.safetensors');
    await saveCheckpointFile(opt, path);
    const r = await flashoptim('convert', path, '--fp32', join(dir, 'plain-w.safetensors'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^flashoptim convert: [^\n]*"plain" is not a built-in optimizer[^\n]*\n$/);
    const info = await flashoptim('info', path);
    expect(info.code).toBe(0);
    expect(info.stdout).toContain('optimizer       plain');
  });

  it('bench runs bench/cpu.ts: progress on stderr, the table on stdout', async () => {
    const r = await flashoptim('bench', '--sizes', '10', '--min-seconds', '0', '--threads', 'none');
    expect([r.code, r.stdout.startsWith('| method | B/param | 2^10 Mparam/s |')]).toEqual([0, true]);
    expect(r.stdout).toMatch(/\| FlashAdamW, js backend \| 7\.125 \| \d/);
    expect(r.stderr).toMatch(/^\[1\] [\d.]+ s {2}2\^10 {2}kernel only, js: [\d.]+ Mparam\/s$/m);
  });
});
