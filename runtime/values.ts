// Parameter values in and out: the stored parameters as they are, the master weights decoded to
// f32 (export), and f32 or bf16 values encoded into them (import). Export and import run kernels
// built from the parameter codec, one chunk at a time, through an f32 buffer the size of a chunk.

import { kernel } from '../compiler/ir/kernel.ts';
import { decodeStored, encodeStored } from '../dsl/codec.ts';
import { field } from '../dsl/ops.ts';
import type { Hyper } from '../optim/define.ts';
import { PARAM } from '../optim/fuse.ts';
import type { TensorSlot } from './arena.ts';
import type { DeviceBuffer, Launch, Program } from './backends/backend.ts';
import type { Chunk } from './chunks.ts';
import { fromBf16 } from './codecs.ts';
import type { Held } from './held.ts';
import type { Work } from './io.ts';
import { compile, read, run, write } from './io.ts';
import { NumericsError, numericsProblem } from './numerics.ts';

/** Stored parameters of every tensor (bf16 bits, or f32 with paramDtype 'f32'). */
export function* readParams<H extends Hyper>(s: Held<H>): Work<Map<string, Uint16Array | Float32Array>> {
  const out = new Map<string, Uint16Array | Float32Array>();
  for (const t of s.layout.tensors)
    out.set(t.name, (yield* s.readRange(PARAM, t.offset, t.length)) as Uint16Array | Float32Array);
  return out;
}

const launchOf = (x: DeviceBuffer, c: Chunk, groups: readonly [number, number], length: number): Launch => ({
  bindings: { ...c.buffers, x },
  uniforms: new Float32Array(1),
  rowOf: null,
  groups,
  length,
});

/** Master weights decoded to f32 (bf16 + correction). */
export function* exportFp32<H extends Hyper>(s: Held<H>): Work<Map<string, Float32Array>> {
  // Device parameters are f32 master weights already (paramDtype 'f32'): their values as they are.
  if (s.inPlace) return (yield* readParams(s)) as Map<string, Float32Array>;
  const G = s.layout.groupSize;
  const k = kernel({
    name: 'export',
    groupSize: G,
    outputs: [{ field: 'x', storage: 'f32', axis: 'element', value: decodeStored(PARAM, s.codecs.param) }],
  });
  const program = (yield compile(k)) as Program;
  const out = new Map(s.layout.tensors.map((t) => [t.name, new Float32Array(t.length)]));
  for (const c of s.chunks) {
    const x = s.backend.alloc('f32', c.length);
    try {
      yield run(program, launchOf(x, c, [0, c.groups[1] - c.groups[0]], c.length));
      for (const t of s.layout.tensors)
        for (const p of s.piecesOf(t))
          if (p.chunk === c) out.get(t.name)!.set((yield read(x, p.at, p.length)) as Float32Array, p.from);
    } finally {
      s.backend.free(x);
    }
  }
  return out;
}

/** Encode values into the parameters: f32 through the param codec, bf16 words with a zero correction. */
export function* importValues<H extends Hyper>(
  s: Held<H>,
  values: ReadonlyMap<TensorSlot, Float32Array | Uint16Array>,
): Work<void> {
  const G = s.layout.groupSize;
  if (s.inPlace) {
    for (const [t, v] of values) yield* s.writeRange(PARAM, t.offset, v instanceof Uint16Array ? fromBf16(v) : v);
    return;
  }
  const k = kernel({ name: 'import', groupSize: G, outputs: encodeStored(PARAM, s.codecs.param, field('x', 'f32')) });
  const program = (yield compile(k)) as Program;
  for (const c of s.chunks) {
    const x = s.backend.alloc('f32', c.length);
    try {
      for (const [t, v] of values)
        for (const p of s.piecesOf(t)) {
          if (p.chunk !== c) continue;
          // bf16 bits widen exactly to f32, and the codec's encode gives them back with a zero correction.
          const part = v.subarray(p.from, p.from + p.length);
          yield write(x, part instanceof Uint16Array ? fromBf16(part) : part, p.at);
          yield run(program, launchOf(x, c, [p.at / G, Math.ceil((p.at + p.length) / G)], c.length));
        }
    } finally {
      s.backend.free(x);
    }
  }
}

/** The 'checkNumerics' option: lr too small to move the largest weight of an active tensor (spec §4.4). */
export function* checkNumerics<H extends Hyper>(
  s: Held<H>,
  rows: readonly Record<string, number>[],
  active: (t: TensorSlot) => boolean,
): Work<void> {
  const all = yield* exportFp32(s);
  const bits = s.options.paramDtype === 'f32' ? 32 : (s.options.masterWeightBits ?? 16);
  for (const t of s.layout.tensors) {
    if (!active(t)) continue;
    const maxAbs = all.get(t.name)!.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    const msg = numericsProblem(t.name, maxAbs, rows[t.row]!['lr'] ?? 0, s.def.numericsK, bits);
    if (msg) throw new NumericsError(msg);
  }
}
