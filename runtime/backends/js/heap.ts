// One WebAssembly.Memory holding every buffer of a backend, so generated WebAssembly kernels read
// and write the arena in place. A first-fit free list with coalescing; blocks are 16-byte aligned
// (whole v128 accesses) and address 0 is never handed out (a kernel reads 0 as "no table").
// Growing a non-shared memory detaches its old ArrayBuffer, so views are made on demand, never kept.

import type { Storage } from '../../../compiler/ir/ir.ts';
import type { Counter, FieldArray } from '../../../compiler/ir/kernel.ts';
import { arrayFor, counterValue, storageBytes } from '../../../compiler/ir/kernel.ts';
import type { DeviceBuffer, Launch } from '../backend.ts';
import { BackendError } from '../backend.ts';

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
      if (b.size === size) this.free_.splice(i, 1);
      else {
        b.at += size;
        b.size -= size;
      }
    } else {
      at = this.top;
      const end = at + size,
        have = this.memory.buffer.byteLength;
      if (end > MAX_PAGES * PAGE)
        throw new BackendError(
          `wasm heap: ${bytes} more bytes would pass WebAssembly's 4 GiB (${this.top} in use); use the 'js' engine for arenas this large`,
        );
      if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
      this.top = end;
    }
    // Zeroed on every path: a block from the free list, and equally one bumped from the top, which
    // may lie where a released block was (release() lowers the top) and still hold its bytes.
    new Uint8Array(this.memory.buffer, at, size).fill(0);
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
      if (last && last.at + last.size === b.at) last.size += b.size;
      else merged.push({ ...b });
    }
    // A free block at the top goes back to the bump pointer.
    const last = merged[merged.length - 1];
    if (last && last.at + last.size === this.top) {
      this.top = last.at;
      merged.pop();
    }
    this.free_ = merged;
  }

  /** Bytes in use (allocated blocks). */
  get used(): number {
    let s = 0;
    for (const v of this.sizes.values()) s += v;
    return s;
  }
}

/**
 * A buffer of a JS backend: a typed array on the host (engine 'js') or a block of the backend's
 * heap (engine 'wasm'). `owner` is the backend's heap or the backend itself, so a buffer of
 * another backend is refused by name instead of being misread.
 */
export interface JsBuffer extends DeviceBuffer {
  /** The values (for a heap block, a fresh view each time: growth detaches old ones). */
  readonly data: FieldArray;
  readonly owner: object;
  /** The block's address, for heap buffers. */
  readonly ptr?: number;
}

/** A block of `heap` (owner: the heap). */
export function heapBuffer(heap: Heap, storage: Storage, length: number): JsBuffer & { readonly ptr: number } {
  const ptr = heap.alloc(length * storageBytes[storage]);
  const View = arrayFor[storage] as unknown as new (b: ArrayBufferLike, at: number, n: number) => FieldArray;
  return {
    storage,
    length,
    ptr,
    owner: heap,
    get data() {
      return new View(heap.memory.buffer, ptr, length);
    },
  };
}

/** A typed array of its own; `shared` puts it in a SharedArrayBuffer every worker can see. */
export function arrayBuffer(owner: object, storage: Storage, length: number, shared = false): JsBuffer {
  if (!shared) return { storage, length, owner, data: new arrayFor[storage](length) };
  const Ctor = arrayFor[storage] as unknown as new (b: SharedArrayBuffer) => FieldArray;
  // Round the byte size up to 4 so every view is aligned and a zero-length buffer still exists.
  const bytes = Math.max(4, Math.ceil((length * storageBytes[storage]) / 4) * 4);
  return { storage, length, owner, data: new Ctor(new SharedArrayBuffer(bytes)).subarray(0, length) as FieldArray };
}

/** `b` if `owner` made it, else a BackendError naming `what`. */
export function own(owner: object, b: JsBuffer | null | undefined, what: string, who: string): JsBuffer {
  if (!b) throw new BackendError(`${who}.run: ${what} is not bound`);
  if (b.owner !== owner) throw new BackendError(`${who}.run: ${what} was not allocated by this backend`);
  return b;
}

/** The arrays a generated-JS launch passes: every bound field's, and rowOf's (null when there is none). */
export function launchArrays(
  owner: object,
  fieldNames: readonly string[],
  l: Launch<JsBuffer>,
  who: string,
): { F: FieldArray[]; R: FieldArray | null } {
  return {
    F: fieldNames.map((f) => own(owner, l.bindings[f], `field ${f}`, who).data),
    R: l.rowOf ? own(owner, l.rowOf, 'rowOf', who).data : null,
  };
}

/** The addresses a WebAssembly launch passes: every bound field's, and rowOf's (0 when there is none). */
export function launchPointers(
  heap: Heap,
  fieldNames: readonly string[],
  l: Launch<JsBuffer>,
  who: string,
): { ptrs: number[]; R: number } {
  return {
    ptrs: fieldNames.map((f) => own(heap, l.bindings[f], `field ${f}`, who).ptr!),
    R: l.rowOf ? own(heap, l.rowOf, 'rowOf', who).ptr! : 0,
  };
}

/**
 * A kernel's counter totals, each as its type: the i64 sums at `scratch` (compiler/render/wasm/
 * render.ts lays them out there), wrapped modulo 2^32 like every backend's (compiler/ir/kernel.ts).
 */
export const counterTotals = (heap: Heap, scratch: number, counters: readonly Counter[]): number[] =>
  Array.from(new BigInt64Array(heap.memory.buffer, scratch, counters.length), (x, i) =>
    counterValue(counters[i]!, Number(BigInt.asUintN(32, x))),
  );
