// `flashoptim inspect <optimizer>`: the fused step kernel of an optimizer, as one backend would run
// it, preceded by a comment with its stats (fields and their storage, bytes per parameter, uniforms,
// IR size) and the device assumptions it was rendered under. The header is a comment in the
// target's syntax, so printed WGSL and WebAssembly text stay whole modules a validator accepts
// (cli.test.ts compiles both). Nothing here needs a device: every renderer is a pure function of
// the kernel.

import type { Kernel, Prepared } from '../compiler/index.ts';
import { fields, prepare, renderGpujs, renderJs, renderWasm, renderWgsl, storageBytes } from '../compiler/index.ts';
import { topo } from '../compiler/ir/ir.ts';
import type { OptimizerDef } from '../optim/index.ts';
import * as optim from '../optim/index.ts';
import type { StorageOptions } from '../optim/storage.ts';
import { fusedKernel } from '../optim/storage.ts';
import type { Io } from './args.ts';
import { UsageError, choice, parse } from './args.ts';

const BACKENDS = ['js', 'wasm', 'wgsl', 'gpujs'] as const;
type Target = (typeof BACKENDS)[number];

export const inspectHelp = `Usage: flashoptim inspect <optimizer> [options]

Print the fused step kernel of a built-in optimizer and its stats. Nothing runs: no device needed.

  <optimizer>          ${optimizerNames().join(', ')}
  --backend <b>        js (generated JavaScript), wasm (WebAssembly text, the default engine),
                       wgsl (WebGPU), gpujs (gpu.js passes)             default: wasm
  --master <bits>      24 (bf16 + int8 correction), 32 (bf16 + int16), none (bf16 alone)
                                                                        default: 24
  --scale <s>          group scale storage of 8-bit states: bf16, fp16 (the reference's), f32
                                                                        default: bf16
  -h, --help           this text`;

/**
 * Optimizer factories exported by optim/index.ts, found when the command runs so a new built-in
 * appears without a list here: a factory called with no hyperparameters returns an OptimizerDef
 * (an object with update and with); the other exports (codec specs, helpers) do not.
 */
export function optimizers(): Map<string, () => OptimizerDef> {
  const out = new Map<string, () => OptimizerDef>();
  for (const [name, v] of Object.entries(optim)) {
    if (typeof v !== 'function') continue;
    try {
      const d = (v as () => unknown)() as Partial<OptimizerDef> | null;
      if (d && typeof d === 'object' && typeof d.update === 'function' && typeof d.with === 'function')
        out.set(name, v as () => OptimizerDef);
    } catch {
      // A helper that needs arguments (ema, a class): not an optimizer factory.
    }
  }
  return out;
}

function optimizerNames(): string[] {
  return [...optimizers().keys()];
}

/** The WGSL device this source assumes (the WebGPU backend asks the real device for each). */
const WGSL_DEVICE = { subgroupMinSize: 32, fusedFma: true } as const;

/** Source text of a prepared kernel for `target`, with the assumptions it was rendered under. */
function render(p: Prepared, target: Target): { source: string; assumes: string[] } {
  switch (target) {
    case 'js':
      return {
        source: renderJs(p),
        assumes: ['JsBackend({ engine: "js" }): every f32 operation rounded with Math.fround'],
      };
    case 'wasm':
      return {
        source: renderWasm(p).wat,
        assumes: ['JsBackend (default engine): WebAssembly SIMD (v128); compiled by wabt from this text'],
      };
    case 'wgsl': {
      const w = renderWgsl(p, WGSL_DEVICE);
      return {
        source: w.source,
        assumes: [
          `subgroups with at least ${WGSL_DEVICE.subgroupMinSize} invocations (${w.threadsPerGroup} invocations a group of ${p.kernel.groupSize}, ${w.elementsPerThread} elements each, reduced by subgroupShuffleXor)`,
          'a fused fma (exact mode: ÷ and √ correctly rounded from fma residuals, bit-identical to the JS backend)',
          `${w.workgroupSize} invocations a workgroup; one storage binding per field (${w.fields.length} fields + 4 fixed bindings)`,
          'the WebGPU backend renders for the device it gets: fewer bindings (fields of one buffer share one), no subgroups or an unfused fma change the source',
        ],
      };
    }
    case 'gpujs':
      return {
        source: renderGpujs(p, { fround: false, signedZeros: false }).source,
        assumes: [
          "a GPU mode of gpu.js (webgl, webgl2, webgpu): f32 arithmetic on the device, −0 read as +0 in bitcasts (mode 'cpu' adds Math.fround and signed zeros)",
        ],
      };
  }
}

/** Stats of a kernel, as comment lines: what is stored, what is read each step, how big the IR is. */
function stats(def: OptimizerDef, k: Kernel, p: Prepared, source: string): string[] {
  const G = k.groupSize;
  const written = new Set(k.outputs.map((o) => o.field));
  const fs = fields(k).map((f) => {
    const bytes = f.axis === 'group' ? storageBytes[f.storage] / G : storageBytes[f.storage];
    return { ...f, bytes, role: written.has(f.field) ? 'read+written' : 'read' };
  });
  const perParam = fs.reduce((a, f) => a + f.bytes, 0);
  const nodes = topo([...p.kernel.outputs.map((o) => o.value), ...p.kernel.counters.map((c) => c.value)]);
  return [
    `kernel ${k.name}: one launch per step over every tensor, groups of ${G} elements`,
    `optimizer ${def.name} (${def.structure}), hyperparameters ${JSON.stringify(def.hyper)}`,
    'fields (storage, bytes per parameter):',
    ...fs.map(
      (f) =>
        `  ${f.field.padEnd(9)} ${f.storage.padEnd(4)} ${f.axis === 'group' ? `one per group` : 'per element  '} ${String(+f.bytes.toFixed(4)).padStart(7)}  ${f.role}`,
    ),
    `bytes per parameter: ${+perParam.toFixed(4)} (the gradient included)`,
    `uniforms set each step: ${p.inputs.join(', ') || 'none'}`,
    `uniforms derived on the host (hoisted): ${p.derived.length}; table columns: ${p.columns.join(', ')}`,
    `IR after the passes: ${nodes.length} nodes, ${nodes.filter((e) => e.op === 'groupMax').length} group reductions, counters: ${k.counters.map((c) => c.name).join(', ') || 'none'}`,
    `source: ${source.split('\n').length} lines, ${source.length} characters`,
  ];
}

/** How each target writes a line comment. */
const COMMENT: Record<Target, string> = { js: '//', wasm: ';;', wgsl: '//', gpujs: '//' };

export async function inspect(argv: readonly string[], io: Io): Promise<number> {
  const who = 'flashoptim inspect';
  const a = parse(who, argv, { backend: { type: 'string' }, master: { type: 'string' }, scale: { type: 'string' } }, [
    'optimizer',
  ]);
  if (!a) {
    io.out(inspectHelp + '\n');
    return 0;
  }
  const all = optimizers();
  const name = a.positionals[0]!;
  const make = all.get(name);
  if (!make)
    throw new UsageError(`${who}: unknown optimizer ${JSON.stringify(name)} (known: ${[...all.keys()].join(', ')})`);
  const target = choice(who, '--backend', String(a.values['backend'] ?? 'wasm'), BACKENDS);
  const master = choice(who, '--master', String(a.values['master'] ?? '24'), ['24', '32', 'none'] as const);
  const scale = choice(who, '--scale', String(a.values['scale'] ?? 'bf16'), ['bf16', 'fp16', 'f32'] as const);
  const storage: StorageOptions = { masterWeightBits: master === 'none' ? null : master === '24' ? 24 : 32, scale };
  const def = make();
  const k = fusedKernel(def, storage);
  const p = prepare(k);
  const { source, assumes } = render(p, target);
  const c = COMMENT[target];
  const head = [
    `flashoptim inspect ${name} --backend ${target} --master ${master} --scale ${scale}`,
    ...stats(def, k, p, source),
    'rendered assuming:',
    ...assumes.map((s) => `  - ${s}`),
  ];
  io.out(head.map((l) => `${c} ${l}`).join('\n') + '\n\n' + source + (source.endsWith('\n') ? '' : '\n'));
  return 0;
}
