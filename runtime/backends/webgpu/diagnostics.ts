// Diagnostic builds of the WebGPU backend, for bench/gpu.ts's where-the-time-goes rows: the same
// kernels with one part left out, each still created through createOptimizer so it moves exactly
// the bytes the real step moves. Not exported from the package and not a user option: most of
// these kernels no longer compute what the JS backend computes (docs/bench-gpu.md marks which).

import { children, constant, loadType, topo, withChildren } from '../../../compiler/ir/ir.ts';
import type { Expr } from '../../../compiler/ir/ir.ts';
import type { Kernel } from '../../../compiler/ir/kernel.ts';
import { fieldsRead, kernel } from '../../../compiler/ir/kernel.ts';
import type { Ablation } from '../../../compiler/render/wgsl/arith.ts';
import { ablations } from '../../../compiler/render/wgsl/arith.ts';
import * as d from '../../../dsl/ops.ts';
import { BackendError } from '../backend.ts';
import type { GpuProgram, WebGpuOptions } from './webgpu.ts';
import { WebGpuBackend } from './webgpu.ts';
import type { DeviceInfo } from './device.ts';
import { checkOptions } from './options.ts';

/**
 * A renderer ablation (compiler/render/wgsl/arith.ts), or a change to the kernel itself:
 * 'arithmetic' (loads and stores only), 'gradientGuard' (every gradient taken as finite: no
 * per-element keep-or-update select, no count), 'counters' (the non-finite count left out).
 */
export type Diagnostic = Ablation | 'arithmetic' | 'gradientGuard' | 'counters';
const kernelChanges = ['arithmetic', 'gradientGuard', 'counters'] as const;
export const diagnostics: readonly Diagnostic[] = [...ablations, ...kernelChanges];
/** Diagnostics whose kernels still store exactly what the JS backend stores. */
export const exactDiagnostics: readonly Diagnostic[] = ['rangeAnalysis', 'tables', 'exactOneBody'];

class DiagnosticBackend extends WebGpuBackend {
  constructor(
    info: DeviceInfo,
    options: WebGpuOptions,
    private readonly off: readonly Diagnostic[],
  ) {
    super(
      info,
      options,
      off.filter((x): x is Ablation => !(kernelChanges as readonly string[]).includes(x)),
    );
  }

  static async make(options: WebGpuOptions, off: readonly Diagnostic[]): Promise<DiagnosticBackend> {
    return WebGpuBackend.open(options, (info) => new DiagnosticBackend(info, options, off));
  }

  override async compile(k: Kernel): Promise<GpuProgram> {
    let x = this.off.includes('gradientGuard') ? finiteGradients(k) : k;
    if (this.off.includes('counters') && x.counters.length) x = kernel({ ...x, counters: [] });
    return super.compile(this.off.includes('arithmetic') ? loadsAndStores(x) : x);
  }
}

/** A WebGPU backend whose kernels leave out what `off` names (each at most once). */
export async function createDiagnosticBackend(
  options: WebGpuOptions,
  off: readonly Diagnostic[],
): Promise<WebGpuBackend> {
  checkOptions(options);
  for (const x of off)
    if (!diagnostics.includes(x))
      throw new BackendError(
        `createDiagnosticBackend: unknown diagnostic ${JSON.stringify(x)} (known: ${diagnostics.join(', ')})`,
      );
  return DiagnosticBackend.make(options, off);
}

/**
 * The same loads and stores as `k` with no arithmetic: each output stores its own field back, and
 * the fields only read (the gradient) are folded into the first element output through their top
 * bit, so nothing is dead code. No counters. What the memory system alone costs.
 */
export function loadsAndStores(k: Kernel): Kernel {
  const written = new Set(k.outputs.map((o) => o.field));
  const readOnly = fieldsRead(k).filter((f) => !written.has(f.field));
  const top = (e: Expr) => d.shr(d.asU32(e), e.type === 'f32' ? 31 : 15);
  const extra = readOnly
    .map((f) => top(d.field(f.field, f.storage, f.axis)))
    .reduce<Expr | null>((a, b) => (a ? d.xor(a, b) : b), null);
  const first = k.outputs.findIndex((o) => o.axis === 'element');
  const outputs = k.outputs.map((o, i) => {
    const v = d.field(o.field, o.storage, o.axis);
    if (i !== first || !extra) return { ...o, value: v };
    const t = loadType(o.storage);
    return { ...o, value: t === 'u32' ? d.xor(v, extra) : d.bitcast(t, d.xor(d.asU32(v), extra)) };
  });
  return kernel({ name: `${k.name}-loads-stores`, groupSize: k.groupSize, outputs });
}

/** `k` with every isFinite of a gradient-only expression taken as true, and no counters. */
export function finiteGradients(k: Kernel): Kernel {
  const grads = new Set(
    fieldsRead(k)
      .filter((f) => !k.outputs.some((o) => o.field === f.field))
      .map((f) => f.field),
  );
  const onlyGrad = (e: Expr) =>
    topo([e]).every((n) => n.op !== 'load' || grads.has(n.field)) && topo([e]).some((n) => n.op === 'load');
  const done = new Map<Expr, Expr>();
  for (const e of topo(k.outputs.map((o) => o.value)))
    done.set(
      e,
      e.op === 'unary' && e.fn === 'isFinite' && onlyGrad(e.x)
        ? constant('bool', 1)
        : withChildren(
            e,
            children(e).map((c) => done.get(c)!),
          ),
    );
  return kernel({ ...k, counters: [], outputs: k.outputs.map((o) => ({ ...o, value: done.get(o.value)! })) });
}
