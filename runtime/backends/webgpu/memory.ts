/// <reference types="@webgpu/types" />
// Device memory of the WebGPU backend: its buffers and views of the caller's, host reads and
// writes, ownership checks, and the two things every call checks first: that the device is alive,
// and that no earlier call's deferred error scopes caught anything (scopes.ts).

import type { Storage } from '../../../compiler/ir/ir.ts';
import type { FieldArray } from '../../../compiler/ir/kernel.ts';
import { arrayFor, storageBytes } from '../../../compiler/ir/kernel.ts';
import type { DeviceBuffer } from '../backend.ts';
import { BackendError } from '../backend.ts';
import { Scopes } from './scopes.ts';

export interface GpuBuffer extends DeviceBuffer {
  readonly buffer: GPUBuffer;
  /** Byte of element 0 in `buffer` (0 for the backend's own buffers). */
  readonly offset: number;
  /** Bytes held on the device: the padded size of an own buffer, 0 for a view (of ours or the caller's). */
  readonly bytes: number;
  readonly owner: GpuMemory;
  /** A view of a buffer the caller owns (`wrap`): never destroyed by the backend. */
  readonly borrowed: boolean;
  /** The first value that exists (a shifted view's values below it lie outside the buffer). */
  readonly lo?: number;
}

/** Buffer usage bits (GPUBufferUsage is not a global in Node). */
export const USAGE = {
  MAP_READ: 0x1,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80,
  INDIRECT: 0x100,
  QUERY_RESOLVE: 0x200,
} as const;

/** Buffers are padded to whole 256-byte blocks so a thread's 16-byte loads never run past the end. */
const PAD = 256;

export abstract class GpuMemory {
  abstract readonly name: string;
  private lostReason: string | null = null;
  private readonly lost: Promise<never>;
  protected readonly scopes: Scopes;

  constructor(readonly device: GPUDevice) {
    this.lost = this.device.lost.then((l) => {
      this.lostReason = `${l.reason ?? 'unknown'}: ${l.message || 'no message'}`;
      throw new BackendError(`webgpu: the device was lost (${this.lostReason})`);
    });
    this.lost.catch(() => {});
    this.scopes = new Scopes(this.device, (p) => this.wait(p));
  }

  /** Throw if the device is lost, or if an earlier call's deferred scopes caught an error. */
  protected alive(what: string): void {
    if (this.lostReason !== null) throw new BackendError(`webgpu.${what}: the device was lost (${this.lostReason})`);
    this.scopes.raise();
  }

  /** Wait for a GPU promise, failing (not hanging) if the device is lost meanwhile. */
  protected wait<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.lost]);
  }

  /** `b` if this backend made it; otherwise a BackendError naming it (`what`) and where it came from. */
  own(b: GpuBuffer | null | undefined, what: string, op: string): GpuBuffer {
    if (!b) throw new BackendError(`webgpu.${op}: ${what} is not bound`);
    if (b.owner !== this) {
      const from = (b as { owner?: { name?: unknown } }).owner?.name;
      throw new BackendError(
        `webgpu.${op}: ${what} is not a buffer of this backend (${typeof from === 'string' ? `it belongs to backend ${from}` : 'it comes from another backend'})`,
      );
    }
    return b;
  }

  alloc(storage: Storage, length: number): GpuBuffer {
    this.alive('alloc');
    if (!Number.isInteger(length) || length < 0)
      throw new BackendError(`webgpu.alloc: length must be a non-negative integer, got ${length}`);
    const bytes = Math.max(PAD, Math.ceil((length * storageBytes[storage]) / PAD) * PAD);
    if (bytes > this.device.limits.maxBufferSize)
      throw new BackendError(
        `webgpu.alloc: ${length} ${storage} values (${bytes} bytes) exceed this device's maxBufferSize ${this.device.limits.maxBufferSize}`,
      );
    let buffer!: GPUBuffer;
    this.scopes.deferred(`alloc (${storage} × ${length})`, () => {
      buffer = this.device.createBuffer({ size: bytes, usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST });
    });
    return { storage, length, bytes, buffer, offset: 0, owner: this, borrowed: false };
  }

  /** A view of `length` values of `storage` in the caller's GPUBuffer from byte `offset` (a multiple of 4). */
  wrap(native: unknown, storage: Storage, length: number, offset = 0): GpuBuffer {
    this.alive('wrap');
    const b = native as Partial<GPUBuffer> | null;
    if (b === null || typeof b !== 'object' || typeof b.size !== 'number' || typeof b.usage !== 'number')
      throw new BackendError(`webgpu.wrap: expected a GPUBuffer, got ${String(native)}`);
    if (!Number.isInteger(offset) || offset < 0 || offset % 4 !== 0)
      throw new BackendError(`webgpu.wrap: the byte offset must be a non-negative multiple of 4, got ${offset}`);
    if (!Number.isInteger(length) || length < 0)
      throw new BackendError(`webgpu.wrap: length must be a non-negative integer, got ${length}`);
    const need = offset + length * storageBytes[storage];
    if (need > b.size)
      throw new BackendError(
        `webgpu.wrap: ${length} ${storage} values from byte ${offset} need ${need} bytes; the buffer has ${b.size}`,
      );
    if (b.mapState !== undefined && b.mapState !== 'unmapped')
      throw new BackendError(`webgpu.wrap: the buffer is ${b.mapState}; unmap it first`);
    return { storage, length, bytes: 0, buffer: b as GPUBuffer, offset, owner: this, borrowed: true };
  }

  /** A view of `length` values of `storage` in `buf`, from its byte `byteOffset` (a multiple of 4). */
  view(buf: GpuBuffer, storage: Storage, byteOffset: number, length: number): GpuBuffer {
    const b = this.own(buf, 'the viewed buffer', 'view');
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 4 !== 0)
      throw new BackendError(`webgpu.view: the byte offset must be a non-negative multiple of 4, got ${byteOffset}`);
    if (!Number.isInteger(length) || length < 0)
      throw new BackendError(`webgpu.view: length must be a non-negative integer, got ${length}`);
    const end = b.offset + byteOffset + length * storageBytes[storage];
    if (end > b.buffer.size)
      throw new BackendError(
        `webgpu.view: ${length} ${storage} values from byte ${byteOffset} run past the buffer's end`,
      );
    return {
      storage,
      length,
      bytes: 0,
      buffer: b.buffer,
      offset: b.offset + byteOffset,
      owner: this,
      borrowed: b.borrowed,
    };
  }

  /** `buf` indexed from `by` values earlier: value by + i is buf's value i, and nothing below by exists. */
  shift(buf: GpuBuffer, by: number): GpuBuffer {
    const b = this.own(buf, 'the shifted buffer', 'shift');
    if (!Number.isInteger(by) || by < 0)
      throw new BackendError(`webgpu.shift: by must be a non-negative integer, got ${by}`);
    const lo = (b.lo ?? 0) + by;
    return { ...b, bytes: 0, offset: b.offset - by * storageBytes[b.storage], length: b.length + by, lo };
  }

  native(buf: GpuBuffer): { buffer: GPUBuffer; offset: number } {
    const b = this.own(buf, 'the buffer', 'native');
    return { buffer: b.buffer, offset: b.offset };
  }

  async write(buf: GpuBuffer, data: FieldArray, offset = 0): Promise<void> {
    this.alive('write');
    const b = this.own(buf, 'the target buffer', 'write');
    if (!(data instanceof arrayFor[b.storage]))
      throw new BackendError(
        `webgpu.write: a ${b.storage} buffer needs a ${arrayFor[b.storage].name}, got ${data.constructor.name}`,
      );
    if (offset < (b.lo ?? 0) || offset + data.length > b.length)
      throw new BackendError(`webgpu.write: ${data.length} values at ${offset} overflow a buffer of ${b.length}`);
    const sb = storageBytes[b.storage];
    let start = b.offset + offset * sb,
      end = b.offset + (offset + data.length) * sb;
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (start % 4 !== 0 || end % 4 !== 0) {
      // WebGPU writes whole words: merge the partial words at both ends with what is there.
      const s4 = start - (start % 4),
        e4 = Math.ceil(end / 4) * 4;
      const words = await this.readBytes(b.buffer, s4, e4 - s4);
      words.set(bytes, start - s4);
      bytes = words;
      start = s4;
      end = e4;
    }
    // writeBuffer copies `data` at once; the write itself is ordered before any later submission.
    this.scopes.deferred(`write (${b.storage} × ${data.length})`, () =>
      this.device.queue.writeBuffer(b.buffer, start, bytes, 0, end - start),
    );
  }

  /** `size` bytes of `src` from byte `start` (a multiple of 4), through a staging buffer. */
  protected async readBytes(src: GPUBuffer, start: number, size: number): Promise<Uint8Array> {
    const n = Math.max(4, Math.ceil(size / 4) * 4);
    const staging = this.device.createBuffer({ size: n, usage: USAGE.MAP_READ | USAGE.COPY_DST });
    try {
      await this.scopes.awaited('read (copy)', () => {
        const enc = this.device.createCommandEncoder();
        enc.copyBufferToBuffer(src, start, staging, 0, Math.min(n, src.size - start));
        this.device.queue.submit([enc.finish()]);
      });
      await this.wait(staging.mapAsync(1 /* GPUMapMode.READ */));
      // The device has answered everything submitted before: an earlier call's error is known now.
      this.scopes.raise();
      return new Uint8Array(staging.getMappedRange().slice(0, size));
    } finally {
      staging.destroy();
    }
  }

  async read(buf: GpuBuffer, offset = 0, length = buf.length - offset): Promise<FieldArray> {
    this.alive('read');
    const b = this.own(buf, 'the source buffer', 'read');
    if (offset < (b.lo ?? 0) || length < 0 || offset + length > b.length)
      throw new BackendError(`webgpu.read: [${offset}, ${offset + length}) is outside a buffer of ${b.length}`);
    const sb = storageBytes[b.storage];
    const first = b.offset + offset * sb,
      s4 = Math.floor(first / 4) * 4;
    const bytes = await this.readBytes(b.buffer, s4, Math.ceil((first + length * sb - s4) / 4) * 4);
    const out = new arrayFor[b.storage](length);
    new Uint8Array(out.buffer).set(bytes.subarray(first - s4, first - s4 + length * sb));
    return out;
  }

  /** Bytes `buf` holds on the device: its length, padded to whole 256-byte blocks (0 for a view of the caller's buffer). */
  bytes(buf: GpuBuffer): number {
    return this.own(buf, 'the buffer', 'bytes').bytes;
  }

  free(buf: GpuBuffer): void {
    const b = this.own(buf, 'the buffer', 'free');
    if (!b.borrowed && b.bytes > 0) b.buffer.destroy(); // a view frees nothing
  }
}
