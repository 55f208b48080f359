// The one interface every backend implements (js, webgpu, gpujs). A small runtime with no math:
// buffers in, a compiled kernel, one launch over a range of groups. The runtime above it (arena,
// optimizer) never knows which backend it talks to.

import type { ReduceFn, ReduceScope, Storage } from '../../compiler/ir/ir.ts';
import type { Kernel } from '../../compiler/ir/kernel.ts';
import type { Prepared } from '../../compiler/ir/pipeline.ts';
import type { FieldArray } from '../../compiler/ir/kernel.ts';

/** A device buffer of `length` values of `storage`. Opaque: only its backend looks inside. */
export interface DeviceBuffer {
  readonly storage: Storage;
  readonly length: number;
}

/** A kernel compiled for one backend. `prepared.columns` is the uniform-table layout it reads. */
export interface Program {
  readonly prepared: Prepared;
  /** Source text of what runs (JS, WGSL, or gpu.js kernel functions), for users to read. */
  readonly source: string;
}

export interface Launch<B extends DeviceBuffer = DeviceBuffer> {
  /** Every field the kernel touches, by name (never changed once launched: a backend may key its plans on it). */
  readonly bindings: Readonly<Record<string, B>>;
  /** rows × columns f32 uniform table (compiler/ir/pipeline.ts `uniformTable` builds it). */
  readonly uniforms: Float32Array;
  /** Row of each group (u32 per group), or null when there is one row. */
  readonly rowOf: B | null;
  /** Groups to run, [start, end). */
  readonly groups: readonly [number, number];
  /** Element count: elements at or past it are neither read nor written. */
  readonly length: number;
  /**
   * A u32 buffer with one entry per kernel counter: the launch adds its counts into it (modulo
   * 2^32) instead of returning them, so nothing waits for the device (runtime/io.ts does the
   * adding on the host for a backend without `countsOnDevice`).
   */
  readonly counters?: B | null;
  /**
   * Where a kernel compiled by a backend with `combiner` reads its reduction columns (`$red<i>`,
   * compiler/ir/phases.ts): value i of its row's entries in `values`, or, where the kernels
   * combine (`combinesInKernels`), the blocks' sums the kernel adds itself. The uniform table's
   * `$red` columns are placeholders then. Where the passes' launches combine
   * (`combinesInLaunches`), a pass's launch adds its groups into it (`pass`). Absent or null for a
   * kernel without such columns.
   */
  readonly reductions?: Combine<B> | null;
  /** With a combine in the kernels or the launches (`Backend.combinesInKernels`, `combinesInLaunches`): the arena group of the launch's group 0 (its chunk's first). */
  readonly origin?: number;
  /**
   * Where the passes' launches combine (`Backend.combinesInLaunches`): this launch is a share (a
   * chunk's) of the reduction pass of `level` over the step's arena groups `groups`, and the
   * level's `last` launch ends with the combine over all of them. The runtime marks it
   * (runtime/reductions.ts), since only it knows which launch is a level's last.
   */
  readonly pass?: ReductionPass | null;
}

/** A launch's place in a step's reductions (`Launch.pass`). */
export interface ReductionPass {
  readonly level: number;
  /** The step's arena groups [start, end): groups outside count nothing. */
  readonly groups: readonly [number, number];
  /** The level's last launch: the combine runs at its end. */
  readonly last: boolean;
}

/** One reduction of a step as a device combine sees it (compiler/ir/phases.ts `Reduction`). */
export interface CombinedReduction {
  readonly fn: ReduceFn;
  readonly scope: ReduceScope;
  readonly level: number;
}

/** What `Backend.combiner` combines, fixed for an optimizer's life (runtime/reductions.ts builds it). */
export interface CombinePlan<B extends DeviceBuffer = DeviceBuffer> {
  readonly reductions: readonly CombinedReduction[];
  /** Uniform rows (one per tensor). */
  readonly rows: number;
  /** Each tensor's row and groups [start, end) in the arena, in arena order. */
  readonly tensors: readonly { readonly row: number; readonly groups: readonly [number, number] }[];
  /**
   * Per reduction, an f32 buffer with every group's partial at its arena group index. Always empty
   * now: every device combine runs in the kernels (`combinesInKernels`) or at the end of the
   * passes' launches (`combinesInLaunches`), and no per-group partial is stored.
   */
  readonly partials: readonly B[];
  /** The arena group where each chunk begins (a launch covers one chunk at most). */
  readonly cuts: readonly number[];
}

/** A device-side combine (`Backend.combiner`): where the reductions' results live on the device. */
export interface Combine<B extends DeviceBuffer = DeviceBuffer> {
  /**
   * rows × reductions f32: reduction i of row r at r · reductions.length + i (a global one in
   * every row); where the kernels combine, its f32 block sums instead (`inKernels`).
   */
  readonly values: B;
  /**
   * Where the kernels combine (`Backend.combinesInKernels`): reduction i's value for a row from
   * the values read back (all of them), in the kernels' order.
   */
  readonly inKernels?: {
    readonly count: number;
    value(sums: Float32Array, i: number, row: number): number;
  };
  readonly reductions: readonly CombinedReduction[];
  /** What it allocated (`values` and its tables; not the partials): `free` frees them. */
  readonly owned: readonly B[];
  free(): void;
}

/**
 * One piece of a submission: a copy between buffers of one storage, or a launch. Never changed
 * once submitted: a backend may remember how it checked and planned an item it sees again.
 */
export type Item<B extends DeviceBuffer = DeviceBuffer, P extends Program = Program> =
  | {
      readonly copy: { readonly from: B; readonly fromAt: number; readonly to: B; readonly toAt: number };
      /** Elements copied. */
      readonly length: number;
    }
  | { readonly program: P; readonly launch: Launch<B> }
  /**
   * The device-side combine of the partials of reductions at `level`, over arena groups
   * [start, end). The runtime sends none now (the kernels or the passes' launches combine:
   * `Backend.combinesInKernels`, `combinesInLaunches`); a backend refuses one.
   */
  | { readonly combine: Combine<B>; readonly level: number; readonly groups: readonly [number, number] };

/**
 * A backend is generic in its own buffer and program types, so it reads its own fields without
 * downcasts; the runtime holds any backend as `Backend` (methods are bivariant in their
 * parameters). A buffer or program from another backend is still refused at run time, by name.
 */
export interface Backend<B extends DeviceBuffer = DeviceBuffer, P extends Program = Program> {
  readonly name: string;
  alloc(storage: Storage, length: number): B;
  /** Copy `data` into `buf` starting at element `offset`. */
  write(buf: B, data: FieldArray, offset?: number): Promise<void>;
  /** Copy `length` elements from `offset` (default: all) back to the host. */
  read(buf: B, offset?: number, length?: number): Promise<FieldArray>;
  compile(kernel: Kernel): Promise<P>;
  /** One kernel launch; resolves to the kernel's counters, in declaration order. */
  run(program: P, launch: Launch<B>): Promise<number[]>;
  /** Copies of any length are cheap here (WebGPU gathers them into a few dispatches): send copies, not copy kernels. */
  readonly gathersCopies?: boolean;
  /**
   * Kernel launches so far: an optimizer step without reductions is exactly one per chunk, with
   * reductions one more per level and chunk (the combine is part of the launches).
   */
  readonly launches: number;
  free(buf: B): void;
  /** Bytes `buf` holds on the device (default: its length × the storage's width). */
  bytes?(buf: B): number;
  dispose(): void;
  /**
   * A view of `length` values of `storage` inside `buf` (a buffer this backend allocated), from
   * byte `byteOffset` (a multiple of 256): it reads and writes `buf`'s bytes, and freeing it frees
   * nothing. The arena packs every field of a chunk into one allocation through views (runtime/arena.ts).
   */
  view?(buf: B, storage: Storage, byteOffset: number, length: number): B;
  /**
   * What one buffer and one binding may hold (bytes); the arena is split into chunks that fit, one
   * launch each. Absent: no limit (one chunk).
   */
  readonly limits?: { readonly maxBufferBytes: number; readonly maxBindingBytes: number };
  /**
   * Its buffers are host memory (the JS engines): reading one is a copy within the same memory, so
   * the runtime combines reduction partials there (runtime/reductions.ts). A backend with neither
   * this nor `combiner` refuses a step with reductions (clipGradNorm, LAMB, LARS, tensorSum, …)
   * with a BackendError.
   */
  readonly hostMemory?: boolean;
  /**
   * Reduction results stay on the device (WebGPU, gpu.js in webgpu mode), combined there in a
   * fixed order per tensor and over tensors, where the next level's pass and the update read them
   * (`Launch.reductions`); nothing is read back for the step. Its kernels keep what reads a
   * reduction in the kernel (compiler/ir/pipeline.ts `reductionsOnDevice`). It must have
   * `combinesInKernels` or `combinesInLaunches` (the runtime refuses it otherwise).
   */
  combiner?(plan: CombinePlan<B>): Combine<B>;
  /**
   * Its combiner's combine runs inside the kernels (WebGPU, runtime/backends/webgpu/blocks.ts):
   * no partials, no `{ combine }` items; a step is a launch per level and chunk plus the update's.
   */
  readonly combinesInKernels?: boolean;
  /**
   * Its combiner's combine runs in the passes' launches (gpu.js in webgpu mode,
   * runtime/backends/gpujs/combine.ts): each launch of a level's pass carries `Launch.pass`, adds
   * its groups into the combine's own buffers, and the level's last launch ends with the combine
   * into `values`. No partials, no `{ combine }` items; a step is a launch per level and chunk
   * plus the update's.
   */
  readonly combinesInLaunches?: boolean;
  /** `run` honours `launch.counters` itself (on the device); otherwise runtime/io.ts adds the counts. */
  readonly countsOnDevice?: boolean;
  /**
   * A view of `length` values of `storage` in a buffer the caller owns on this backend's device
   * (a GPUBuffer on WebGPU), from byte `offset`. Freeing the view leaves the caller's buffer alone.
   * Only backends with device buffers of their own have it.
   */
  wrap?(native: unknown, storage: Storage, length: number, offset: number): B;
  /**
   * `buf` indexed from `by` values earlier (value by + i is buf's value i; nothing below by may be
   * touched): a caller's tensor bound where the arena would hold it (runtime/params.ts).
   */
  shift?(buf: B, by: number): B;
  /** The caller-visible buffer and byte offset behind `buf` (what `wrap` takes). */
  native?(buf: B): { readonly buffer: unknown; readonly offset: number };
  /**
   * Copies and launches, in order, in ONE submission to the device; resolves once submitted.
   * Launches must count into `launch.counters`. Errors the device reports later surface at the
   * next call at the latest.
   */
  submit?(items: readonly Item<B, P>[]): Promise<void>;
}

/**
 * A backend whose work finishes within each call (the JS backend, both engines): the same
 * operations without promises, so a session can step synchronously (runtime/io.ts).
 */
export interface SyncBackend<B extends DeviceBuffer = DeviceBuffer, P extends Program = Program> extends Backend<B, P> {
  writeSync(buf: B, data: FieldArray, offset?: number): void;
  readSync(buf: B, offset?: number, length?: number): FieldArray;
  compileSync(kernel: Kernel): P;
  runSync(program: P, launch: Launch<B>): number[];
}

export const isSync = (b: Backend): b is SyncBackend => typeof (b as Partial<SyncBackend>).runSync === 'function';

export class BackendError extends Error {}
