/// <reference types="@webgpu/types" />
// Copies as a few compute dispatches. A step whose gradients sit in one GPUBuffer per tensor moves
// each into the arena: GPT-2 small has 148, and 148 copyBufferToBuffer commands (or one copy kernel
// launch each) cost an H200 about 3 µs apiece, as much as SGD's whole kernel over the large ones
// (bench/RESULTS.md). A gather dispatch moves up to `sources` of them at once: each copy gets
// ⌈words/1024⌉ workgroups (1024 words each, 4 a thread), which find their copy in a table of first
// workgroups and read its source binding S<k> through a workgroup-uniform switch on k. No
// workgroup idles: a grid as wide as the largest copy on every row (an earlier version) launched
// ~900 000 empty workgroups a GPT-2 step and cost 0.45 ms.
//
// A copy is gathered only when both buffers can be bound as storage within the device's binding
// size and its source is not its destination buffer (one dispatch cannot bind a buffer both
// read-only and writable); otherwise it stays a copyBufferToBuffer. The result is the same bytes.

import { Ids } from '../../ids.ts';
import { USAGE } from './memory.ts';

/** A checked copy of whole words (encode.ts planCopy). */
export interface PlannedCopy {
  readonly from: GPUBuffer;
  readonly fromByte: number;
  readonly to: GPUBuffer;
  readonly toByte: number;
  readonly bytes: number;
}

const WG = 256;
/** Words a workgroup moves: 4 per invocation, each of the 4 loads coalesced across the workgroup. */
const PER_WG = 4 * WG;
/** A dispatch's grid is at most this wide; more workgroups go on further grid rows. */
const MAX_X = 65535;

export interface Gather {
  readonly bindGroup: GPUBindGroup;
  readonly x: number;
  readonly y: number;
}

interface Window {
  readonly offset: number;
  readonly size: number;
}

export class Gatherer {
  /** Source bindings per dispatch: the device's storage buffers less the table and the destination. */
  readonly sources: number;
  private pipeline: GPUComputePipeline | null = null;
  private readonly dummy: GPUBuffer;
  private readonly batches = new Map<string, { gathers: Gather[]; rest: PlannedCopy[]; tables: GPUBuffer[] }>();
  private readonly ids = new Ids();
  /** Copies done by gather dispatches so far (tests read it). */
  gathered = 0;

  /** `maxX`: the grid's width (tests make it small to cover grids of several rows). */
  constructor(
    private readonly device: GPUDevice,
    private readonly maxX = MAX_X,
  ) {
    this.sources = Math.max(0, Math.min(device.limits.maxStorageBuffersPerShaderStage - 2, 14));
    this.dummy = device.createBuffer({ size: 256, usage: USAGE.STORAGE });
  }

  /** The binding of bytes [from, from + bytes) of a buffer, or null when it cannot be bound as storage. */
  private window(b: GPUBuffer, from: number, bytes: number): Window | null {
    const L = this.device.limits;
    if ((b.usage & USAGE.STORAGE) === 0) return null;
    const offset = from - (from % L.minStorageBufferOffsetAlignment);
    const size = Math.max(4, from + bytes - offset);
    return size <= L.maxStorageBufferBindingSize ? { offset, size } : null;
  }

  /**
   * Gathers for a run of copies, and the copies left to copyBufferToBuffer; the same run (the same
   * planned copies: the runtime keeps them from step to step) gets the same gathers, made once.
   */
  plan(copies: readonly PlannedCopy[]): { gathers: Gather[]; rest: PlannedCopy[] } {
    const key = copies.map((c) => this.ids.of(c)).join(' ');
    const hit = this.batches.get(key);
    if (hit) return hit;
    const rest: PlannedCopy[] = [];
    const byDest = new Map<GPUBuffer, PlannedCopy[]>();
    for (const c of copies) {
      const ok =
        this.sources > 0 &&
        c.bytes > 0 &&
        c.from !== c.to &&
        this.window(c.from, c.fromByte, c.bytes) &&
        this.window(c.to, c.toByte, c.bytes);
      if (!ok) rest.push(c);
      else if (byDest.has(c.to)) byDest.get(c.to)!.push(c);
      else byDest.set(c.to, [c]);
    }
    const gathers: Gather[] = [],
      tables: GPUBuffer[] = [];
    for (const [to, all] of byDest) {
      const sorted = all.sort((a, b) => b.bytes - a.bytes);
      for (let i = 0; i < sorted.length; i += this.sources) {
        const rows = sorted.slice(i, i + this.sources);
        const lo = Math.min(...rows.map((c) => c.toByte)),
          hi = Math.max(...rows.map((c) => c.toByte + c.bytes));
        const dest = this.window(to, lo, hi - lo);
        // Rows whose destinations span more than one binding holds stay encoder copies. A lone
        // copy is still gathered: on the GPU's cores it runs at several times the copy engine's
        // bandwidth on an H200 (as an encoder copy, the 2^28 step took 1.15–1.51× its kernel).
        if (!dest) {
          rest.push(...rows);
          continue;
        }
        const g = this.gather(to, dest, rows);
        gathers.push(g.gather);
        tables.push(g.table);
      }
    }
    if (this.batches.size >= 256) this.clear(); // bound what stale runs hold on to
    const made = { gathers, rest, tables };
    this.batches.set(key, made);
    this.gathered += copies.length - rest.length;
    return made;
  }

  private gather(to: GPUBuffer, dest: Window, rows: readonly PlannedCopy[]): { gather: Gather; table: GPUBuffer } {
    const d = this.device;
    // Per copy: source binding, source word, destination word, words, first workgroup (8 words a row).
    const table = new Uint32Array(8 * rows.length);
    const entries: GPUBindGroupEntry[] = [
      { binding: 1, resource: { buffer: to, offset: dest.offset, size: dest.size } },
    ];
    let first = 0;
    rows.forEach((c, k) => {
      const w = this.window(c.from, c.fromByte, c.bytes)!;
      entries.push({ binding: 2 + k, resource: { buffer: c.from, offset: w.offset, size: w.size } });
      table.set([k, (c.fromByte - w.offset) / 4, (c.toByte - dest.offset) / 4, c.bytes / 4, first], 8 * k);
      first += Math.ceil(c.bytes / 4 / PER_WG);
    });
    for (let k = rows.length; k < this.sources; k++) entries.push({ binding: 2 + k, resource: { buffer: this.dummy } });
    const buffer = d.createBuffer({ size: table.byteLength, usage: USAGE.STORAGE | USAGE.COPY_DST });
    d.queue.writeBuffer(buffer, 0, table);
    entries.push({ binding: 0, resource: { buffer } });
    const pipeline = (this.pipeline ??= this.makePipeline());
    const x = Math.min(this.maxX, first);
    return {
      gather: {
        bindGroup: d.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label: 'gather' }),
        x,
        y: Math.ceil(first / x),
      },
      table: buffer,
    };
  }

  /** Encode gathers into `pass`. */
  encode(pass: GPUComputePassEncoder, gathers: readonly Gather[]): void {
    if (!gathers.length) return;
    pass.setPipeline(this.pipeline!);
    for (const g of gathers) {
      pass.setBindGroup(0, g.bindGroup);
      pass.dispatchWorkgroups(g.x, g.y);
    }
  }

  private makePipeline(): GPUComputePipeline {
    const K = this.sources;
    const src = [...Array(K).keys()];
    const code = [
      // first: the copy's first workgroup; p0..p2 pad a row to 32 bytes.
      'struct Row { src: u32, at: u32, dst: u32, words: u32, first: u32, p0: u32, p1: u32, p2: u32 }',
      '@group(0) @binding(0) var<storage, read> T: array<Row>;',
      '@group(0) @binding(1) var<storage, read_write> D: array<u32>;',
      ...src.map((k) => `@group(0) @binding(${2 + k}) var<storage, read> S${k}: array<u32>;`),
      `@compute @workgroup_size(${WG})`,
      'fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>, @builtin(local_invocation_index) l: u32) {',
      '  let wg = w.y * n.x + w.x;',
      // Its copy: the last row whose first workgroup is ≤ wg (firsts ascend). Past the last
      // copy's workgroups (the grid's last row) every index is ≥ its words: nothing is written.
      '  var k = 0u;',
      '  for (var j = 1u; j < arrayLength(&T); j++) { if (T[j].first <= wg) { k = j; } }',
      '  let r = T[k];',
      `  let base = (wg - r.first) * ${PER_WG}u + l;`,
      '  switch r.src {',
      ...src.map(
        (k) =>
          `    case ${k}u: { for (var q = 0u; q < 4u; q++) { let i = base + q * ${WG}u; if (i < r.words) { D[r.dst + i] = S${k}[r.at + i]; } } }`,
      ),
      '    default: {}',
      '  }',
      '}',
    ].join('\n');
    const module = this.device.createShaderModule({ code, label: 'gather' });
    return this.device.createComputePipeline({
      layout: 'auto',
      compute: { module, entryPoint: 'main' },
      label: 'gather',
    });
  }

  private clear(): void {
    for (const b of this.batches.values()) for (const t of b.tables) t.destroy();
    this.batches.clear();
  }

  dispose(): void {
    this.clear();
    this.dummy.destroy();
  }
}
