// One WebAssembly.Memory holding every buffer of a backend, so generated WebAssembly kernels read
// and write the arena in place. A first-fit free list with coalescing; blocks are 16-byte aligned
// (whole v128 accesses) and address 0 is never handed out (a kernel reads 0 as "no table").
// Growing a non-shared memory detaches its old ArrayBuffer, so views are made on demand, never kept.

import type { Storage } from '../../../compiler/ir/ir.ts';
import { storageBytes } from '../../../compiler/ir/kernel.ts';
import type { DeviceBuffer, Launch } from '../backend.ts';
import { BackendError } from '../backend.ts';
import type { FieldArray } from '../../../compiler/ir/kernel.ts';
import { arrayFor } from '../../../compiler/ir/kernel.ts';

const PAGE = 65536;
/** wasm32 addresses 4 GiB; a shared memory must declare its maximum up front. */
export const MAX_PAGES = 65536;
const align = (n: number) => Math.ceil(n / 16) * 16;

export class Heap {
  readonly memory: WebAssembly.Memory;
  private top = 16;
  private free_: { at: number; size: number }[] = [];
  private readonly sizes = new Map<number, number>();

  constructor(shared = false) {
    this.memory = shared
      ? new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true })
      : new WebAssembly.Memory({ initial: 1 });
  }

  /** `bytes` of zeroed memory; its address. */
  alloc(bytes: number): number {
    const size = align(Math.max(16, bytes));
    const i = this.free_.findIndex((b) => b.size >= size);
    let at: number;
    if (i >= 0) {
      const b = this.free_[i]!;
      at = b.at;
      if (b.size === size) this.free_.splice(i, 1); else { b.at += size; b.size -= size; }
      new Uint8Array(this.memory.buffer, at, size).fill(0);
    } else {
      at = this.top;
      const end = at + size, have = this.memory.buffer.byteLength;
      if (end > MAX_PAGES * PAGE) throw new BackendError(`wasm heap: ${bytes} more bytes would pass WebAssembly's 4 GiB (${this.top} in use); use the 'js' engine for arenas this large`);
      if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
      this.top = end;
    }
    this.sizes.set(at, size);
    return at;
  }

  release(at: number): void {
    const size = this.sizes.get(at);
    if (size === undefined) return;
    this.sizes.delete(at);
    this.free_.push({ at, size });
    this.free_.sort((a, b) => a.at - b.at);
    const merged: { at: number; size: number }[] = [];
    for (const b of this.free_) {
      const last = merged[merged.length - 1];
      if (last && last.at + last.size === b.at) last.size += b.size; else merged.push({ ...b });
    }
    // A free block at the top goes back to the bump pointer.
    const last = merged[merged.length - 1];
    if (last && last.at + last.size === this.top) { this.top = last.at; merged.pop(); }
    this.free_ = merged;
  }

  /** Bytes in use (allocated blocks). */
  get used(): number { let s = 0; for (const v of this.sizes.values()) s += v; return s; }
}

/** A buffer in a heap: `heap` tells whose, so a buffer from another backend is refused, not misread. */
export interface HeapBuffer extends DeviceBuffer {
  readonly ptr: number;
  readonly heap: Heap;
  /** The values: a fresh typed-array view each time (growth detaches old ones). */
  readonly data: FieldArray;
}

export function heapBuffer(heap: Heap, storage: Storage, length: number): HeapBuffer {
  const ptr = heap.alloc(length * storageBytes[storage]);
  const View = arrayFor[storage] as unknown as new (b: ArrayBufferLike, at: number, n: number) => FieldArray;
  return { storage, length, ptr, heap, get data() { return new View(heap.memory.buffer, ptr, length); } };
}

/** The addresses a kernel launch passes: every bound field's, and rowOf's (0 when there is none). */
export function launchPointers(heap: Heap, fieldNames: readonly string[], l: Launch, who: string): { ptrs: number[]; R: number } {
  const mine = (b: DeviceBuffer | null | undefined, what: string): HeapBuffer => {
    if (!b) throw new BackendError(`${who}.run: ${what} is not bound`);
    if ((b as HeapBuffer).heap !== heap) throw new BackendError(`${who}.run: ${what} was not allocated by this backend`);
    return b as HeapBuffer;
  };
  return { ptrs: fieldNames.map((f) => mine(l.bindings[f], `field ${f}`).ptr), R: l.rowOf ? mine(l.rowOf, 'rowOf').ptr : 0 };
}

/** A kernel's counter totals: `n` i64 at `scratch` (compiler/render/wasm/render.ts lays them out there). */
export const counterTotals = (heap: Heap, scratch: number, n: number): number[] => Array.from(new BigInt64Array(heap.memory.buffer, scratch, n), Number);
