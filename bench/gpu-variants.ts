// The rows of bench/gpu.ts's where-the-time-goes table (VARIANTS=1, fast or path): AdamW with one
// thing changed each, built through a public option (`backend`) or a diagnostic build (`diag`,
// runtime/backends/webgpu/diagnostics.ts). Rows marked [not exact] store other values than JS.

import type { StorageOptions } from '../optim/storage.ts';
import type { Diagnostic } from '../runtime/backends/webgpu/diagnostics.ts';
import type { WebGpuBackend, WebGpuOptions } from '../runtime/backends/webgpu/webgpu.ts';

/** A row: its label, its backend, storage options, and whether its gradients are all zero (m, v and scales stay 0). */
export type Row = [string, () => Promise<WebGpuBackend>, StorageOptions?, 'zeros'?];

export function variantRows(
  kind: string,
  backend: (o?: WebGpuOptions) => Promise<WebGpuBackend>,
  diag: (off: Diagnostic[], o?: WebGpuOptions) => () => Promise<WebGpuBackend>,
): Row[] {
  const variants: Row[] = [
    ['default', () => backend()],
    ['exact: false (driver ÷, √, contraction) [not exact]', () => backend({ exact: false })],
    ['elementsPerThread 4', () => backend({ elementsPerThread: 4 })],
    ['elementsPerThread 16', () => backend({ elementsPerThread: 16 })],
    ['loads and stores only [not a step]', diag(['arithmetic'])],
    ['driver ÷ in exact mode [not exact]', diag(['exactDiv'])],
    ['driver √ in exact mode [not exact]', diag(['exactSqrt'])],
    ['exact ÷ √ without fallback branches [not exact at range ends]', diag(['fallbackBranches'])],
    ['no contraction guards [not exact]', diag(['contractionGuards'])],
    ['no NaN guards [not IEEE-safe]', diag(['nanGuards'])],
    ['exact: false, no NaN guards [not safe]', diag(['nanGuards'], { exact: false })],
    ['no range analysis (every NaN guard kept)', diag(['rangeAnalysis'])],
    ['no tables (8-bit decodes computed)', diag(['tables'])],
    ['bf16 params, no correction (masterWeightBits null)', () => backend(), { masterWeightBits: null }],
    ['f32 group scales', () => backend(), { scale: 'f32' }],
    // Thread shapes of the memory path and of the driver's arithmetic (workgroupSize default 256).
    ...[64, 128, 512, 1024].flatMap((wg): Row[][number][] => [
      [`loads and stores only, workgroupSize ${wg} [not a step]`, diag(['arithmetic'], { workgroupSize: wg })],
      [`exact: false, workgroupSize ${wg} [not exact]`, () => backend({ exact: false, workgroupSize: wg })],
    ]),
    ['loads and stores only, elementsPerThread 4 [not a step]', diag(['arithmetic'], { elementsPerThread: 4 })],
    ['exact: false, elementsPerThread 4 [not exact]', () => backend({ exact: false, elementsPerThread: 4 })],
  ];
  // VARIANTS=fast: the rows that locate the cost of the driver-arithmetic kernel.
  const fast: Row[] = [
    ['default', () => backend()],
    ['exact: false [not exact]', () => backend({ exact: false })],
    ['exact: false, no counter [not a step]', diag(['counters'], { exact: false })],
    ['no counter [not a step]', diag(['counters'])],
    ...[64, 128].flatMap((wg): Row[] => [
      [`default, workgroupSize ${wg}`, () => backend({ workgroupSize: wg })],
      [`exact: false, workgroupSize ${wg} [not exact]`, () => backend({ exact: false, workgroupSize: wg })],
      [
        `exact: false, gradients taken as finite, workgroupSize ${wg} [not safe]`,
        diag(['gradientGuard'], { exact: false, workgroupSize: wg }),
      ],
      [
        `exact: false, no counter, workgroupSize ${wg} [not a step]`,
        diag(['counters'], { exact: false, workgroupSize: wg }),
      ],
      [
        `exact: false, no NaN guards, workgroupSize ${wg} [not safe]`,
        diag(['nanGuards'], { exact: false, workgroupSize: wg }),
      ],
      [
        `exact: false, elementsPerThread 4, workgroupSize ${wg} [not exact]`,
        () => backend({ exact: false, elementsPerThread: 4, workgroupSize: wg }),
      ],
      [
        `exact: false, elementsPerThread 2, workgroupSize ${wg} [not exact]`,
        () => backend({ exact: false, elementsPerThread: 2, workgroupSize: wg }),
      ],
    ]),
    [
      'exact: false, gradients taken as finite, no NaN guards [not safe]',
      diag(['gradientGuard', 'nanGuards'], { exact: false }),
    ],
  ];
  // VARIANTS=path: the fast path (compiler/render/wgsl/assume.ts) against one general body, and
  // what exact mode's guards, fallback branches and decode tables cost.
  const path: Row[] = [
    ['default', () => backend()],
    ['exact with the fast path too (two bodies)', diag(['exactOneBody'])],
    ['exact, no NaN guards [not IEEE-safe]', diag(['nanGuards'])],
    ['exact ÷ √ without fallback branches [not exact at range ends]', diag(['fallbackBranches'])],
    ['exact, no tables (8-bit decodes computed)', diag(['tables'])],
    ['exact: false, workgroupSize 64 [not exact]', () => backend({ exact: false, workgroupSize: 64 })],
    [
      'exact: false, workgroupSize 64, one general body (no fast path) [not exact]',
      diag(['fastPath'], { exact: false, workgroupSize: 64 }),
    ],
    [
      'exact: false, workgroupSize 64, no tables (8-bit decodes computed) [not exact]',
      diag(['tables'], { exact: false, workgroupSize: 64 }),
    ],
    [
      'exact: false, workgroupSize 64, no NaN guards [not safe]',
      diag(['nanGuards'], { exact: false, workgroupSize: 64 }),
    ],
    ['loads and stores only [not a step]', diag(['arithmetic'])],
    ['loads and stores only, workgroupSize 64 [not a step]', diag(['arithmetic'], { workgroupSize: 64 })],
  ];
  // VARIANTS=ceiling: what exact mode's remaining stages cost together (issue 14): the guards and
  // fallback branches a guard-free body would drop, then the exact ÷ and √ themselves; and the
  // split kernels (splitKernels) that drop them for real.
  const ceiling: Row[] = [
    ['default (split kernels: fast kernel + fallback kernel)', () => backend()],
    ['splitKernels: false (one kernel, the general body)', () => backend({ splitKernels: false })],
    // Zero gradients keep every group's states 0 and scales 2^-126: the fast kernel must take
    // them as ordinary data (they once sent every workgroup to the fallback).
    ['default, zero gradients', () => backend(), undefined, 'zeros'],
    ['splitKernels: false, zero gradients', () => backend({ splitKernels: false }), undefined, 'zeros'],
    ['default, workgroupSize 128', () => backend({ workgroupSize: 128 })],
    ['default, workgroupSize 64', () => backend({ workgroupSize: 64 })],
    ['exact, no NaN guards, no fallback branches [not safe]', diag(['nanGuards', 'fallbackBranches'])],
    [
      'exact, no NaN guards, no fallback branches, driver ÷ [not exact]',
      diag(['nanGuards', 'fallbackBranches', 'exactDiv']),
    ],
    [
      'exact, no NaN guards, no fallback branches, driver ÷ and √ [not exact]',
      diag(['nanGuards', 'fallbackBranches', 'exactDiv', 'exactSqrt']),
    ],
    [
      'exact, no NaN guards, driver ÷ and √, no contraction guards [not exact]',
      diag(['nanGuards', 'fallbackBranches', 'exactDiv', 'exactSqrt', 'contractionGuards']),
    ],
    // What the master-weight correction codec costs once the guards and exact arithmetic are gone.
    [
      'exact, no NaN guards, driver ÷ and √, no contraction guards, bf16 params without correction [not exact]',
      diag(['nanGuards', 'fallbackBranches', 'exactDiv', 'exactSqrt', 'contractionGuards']),
      { masterWeightBits: null },
    ],
    ['exact: false [not exact]', () => backend({ exact: false })],
    // The guard-free exact body a fallback outside it would allow: the fast path's body alone.
    ['exact, the fast path body alone (no fallback) [not safe]', diag(['fastBodyOnly'])],
    ['loads and stores only [not a step]', diag(['arithmetic'])],
    [
      'loads and stores only, bf16 params without correction [not a step]',
      diag(['arithmetic']),
      { masterWeightBits: null },
    ],
  ];
  return kind === 'fast' ? fast : kind === 'path' ? path : kind === 'ceiling' ? ceiling : variants;
}
