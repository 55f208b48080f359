// The names model of examples/names.ts (makemore's MLP: CONTEXT characters → embeddings → tanh
// layer → next-character logits), written out by hand so the page needs no framework: flashoptim
// holds the weights (bf16 + correction) and the states, the page holds only what a bf16 training
// loop needs, the bf16 weights it reads back for the forward pass and the bf16 gradients it hands
// over. Weights are decoded one row at a time and each gradient element is summed over the batch
// in a float64 register and rounded to bf16 once, so no f32 copy of either ever exists.

import { prng } from '../../props/prng.ts';

export const CONTEXT = 3;

/** The model's tensors: embeddings, the tanh layer's weights and bias, the output layer's. */
export type Tensor = 'C' | 'W1' | 'b1' | 'W2' | 'b2';

export interface Shapes {
  readonly vocab: number;
  readonly embed: number;
  readonly hidden: number;
}

/** Tensor shapes by name, in the order the optimizer stores them. */
export function shapes(s: Shapes): Record<Tensor, [number, number] | [number]> {
  return {
    C: [s.vocab, s.embed],
    W1: [CONTEXT * s.embed, s.hidden],
    b1: [s.hidden],
    W2: [s.hidden, s.vocab],
    b2: [s.vocab],
  };
}

/** Initial f32 values (seeded): embeddings ~ N(0, 1), tanh layer scaled for its fan-in, small logits. */
export function initialWeights(s: Shapes, seed: number): Record<Tensor, Float32Array> {
  const r = prng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const fill = (n: number, scale: number) => Float32Array.from({ length: n }, () => normal() * scale);
  const fanIn = CONTEXT * s.embed;
  return {
    C: fill(s.vocab * s.embed, 1),
    W1: fill(fanIn * s.hidden, (5 / 3 / Math.sqrt(fanIn)) * 0.5),
    b1: new Float32Array(s.hidden),
    W2: fill(s.hidden * s.vocab, 0.01),
    b2: new Float32Array(s.vocab),
  };
}

const word = new Uint32Array(1);
const float = new Float32Array(word.buffer);
/** bf16 bits → their value. */
export function bf16Value(bits: number): number {
  word[0] = bits << 16;
  return float[0]!;
}
/** A value → bf16 bits, rounded to nearest even (the optimizer's own rounding of f32 gradients). */
export function bf16Bits(x: number): number {
  float[0] = x;
  const u = word[0]!;
  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
}

/** Row `i` of a bf16 matrix with `n` columns, decoded into `out`. */
function row(w: Uint16Array, i: number, n: number, out: Float64Array): Float64Array {
  for (let j = 0; j < n; j++) out[j] = bf16Value(w[i * n + j]!);
  return out;
}

export type Weights = Readonly<Record<Tensor, Uint16Array>>;

/** Activations of one batch: the embeddings, the tanh layer and the softmax of the logits. */
interface Forward {
  readonly emb: Float64Array;
  readonly h: Float64Array;
  readonly probs: Float64Array;
}

/** Forward pass over `batch` contexts `x` (CONTEXT indices each). */
export function forward(s: Shapes, w: Weights, x: Int32Array, batch: number): Forward {
  const { vocab: V, embed: E, hidden: H } = s,
    K = CONTEXT * E;
  const emb = new Float64Array(batch * K),
    h = new Float64Array(batch * H),
    probs = new Float64Array(batch * V);
  const r = new Float64Array(Math.max(E, H, V));
  for (let b = 0; b < batch; b++)
    for (let t = 0; t < CONTEXT; t++) emb.set(row(w.C, x[b * CONTEXT + t]!, E, r).subarray(0, E), b * K + t * E);
  for (let i = 0; i < batch * H; i++) h[i] = bf16Value(w.b1[i % H]!);
  for (let k = 0; k < K; k++) {
    row(w.W1, k, H, r);
    for (let b = 0; b < batch; b++) {
      const e = emb[b * K + k]!;
      for (let i = 0; i < H; i++) h[b * H + i]! += e * r[i]!;
    }
  }
  for (let i = 0; i < h.length; i++) h[i] = Math.tanh(h[i]!);
  for (let i = 0; i < batch * V; i++) probs[i] = bf16Value(w.b2[i % V]!);
  for (let i = 0; i < H; i++) {
    row(w.W2, i, V, r);
    for (let b = 0; b < batch; b++) {
      const a = h[b * H + i]!;
      for (let j = 0; j < V; j++) probs[b * V + j]! += a * r[j]!;
    }
  }
  for (let b = 0; b < batch; b++) {
    const z = probs.subarray(b * V, (b + 1) * V);
    const m = Math.max(...z);
    let sum = 0;
    for (let j = 0; j < V; j++) sum += z[j] = Math.exp(z[j]! - m);
    for (let j = 0; j < V; j++) z[j]! /= sum;
  }
  return { emb, h, probs };
}

/** Mean cross-entropy of `n` examples (the validation loss), in batches of 512. */
export function loss(s: Shapes, w: Weights, x: Int32Array, y: Int32Array, n: number): number {
  let sum = 0;
  for (let at = 0; at < n; at += 512) {
    const b = Math.min(512, n - at);
    const p = forward(s, w, x.subarray(at * CONTEXT, (at + b) * CONTEXT), b).probs;
    for (let i = 0; i < b; i++) sum -= Math.log(Math.max(p[i * s.vocab + y[at + i]!]!, 1e-30));
  }
  return sum / n;
}

/** Mean cross-entropy of a batch and every weight's gradient as bf16 bits (written into `grads`). */
export function lossAndGradients(
  s: Shapes,
  w: Weights,
  x: Int32Array,
  y: Int32Array,
  batch: number,
  grads: Weights,
): number {
  const { vocab: V, embed: E, hidden: H } = s,
    K = CONTEXT * E;
  const { emb, h, probs } = forward(s, w, x, batch);
  let loss = 0;
  const dz = probs; // softmax − one-hot, over the batch: the logits' gradient, in place
  for (let b = 0; b < batch; b++) {
    loss -= Math.log(Math.max(dz[b * V + y[b]!]!, 1e-30));
    dz[b * V + y[b]!]! -= 1;
  }
  for (let i = 0; i < dz.length; i++) dz[i]! /= batch;
  for (let j = 0; j < V; j++) {
    let g = 0;
    for (let b = 0; b < batch; b++) g += dz[b * V + j]!;
    grads.b2[j] = bf16Bits(g);
  }
  const dh = new Float64Array(batch * H);
  const r = new Float64Array(Math.max(V, H));
  for (let i = 0; i < H; i++) {
    row(w.W2, i, V, r);
    for (let j = 0; j < V; j++) {
      let g = 0;
      for (let b = 0; b < batch; b++) g += h[b * H + i]! * dz[b * V + j]!;
      grads.W2[i * V + j] = bf16Bits(g);
    }
    for (let b = 0; b < batch; b++) {
      let d = 0;
      for (let j = 0; j < V; j++) d += dz[b * V + j]! * r[j]!;
      dh[b * H + i] = d * (1 - h[b * H + i]! ** 2); // through tanh
    }
  }
  for (let i = 0; i < H; i++) {
    let g = 0;
    for (let b = 0; b < batch; b++) g += dh[b * H + i]!;
    grads.b1[i] = bf16Bits(g);
  }
  const demb = new Float64Array(batch * K);
  for (let k = 0; k < K; k++) {
    row(w.W1, k, H, r);
    for (let i = 0; i < H; i++) {
      let g = 0;
      for (let b = 0; b < batch; b++) g += emb[b * K + k]! * dh[b * H + i]!;
      grads.W1[k * H + i] = bf16Bits(g);
    }
    for (let b = 0; b < batch; b++) {
      let d = 0;
      for (let i = 0; i < H; i++) d += dh[b * H + i]! * r[i]!;
      demb[b * K + k] = d;
    }
  }
  // An embedding row's gradient sums every position that looked it up.
  const dC = new Float64Array(V * E);
  for (let b = 0; b < batch; b++)
    for (let t = 0; t < CONTEXT; t++) {
      const c = x[b * CONTEXT + t]!;
      for (let e = 0; e < E; e++) dC[c * E + e]! += demb[b * K + t * E + e]!;
    }
  for (let i = 0; i < dC.length; i++) grads.C[i] = bf16Bits(dC[i]!);
  return loss / batch;
}

/** `count` names drawn from the model (seeded); '.' (index 0) ends a name. */
export function sample(s: Shapes, w: Weights, vocab: string, seed: number, count: number): string[] {
  const r = prng(seed);
  const out: string[] = [];
  for (let k = 0; k < count; k++) {
    const ctx = new Int32Array(CONTEXT);
    let name = '';
    while (name.length < 16) {
      const p = forward(s, w, ctx, 1).probs;
      let u = r(),
        c = 0;
      while (c < p.length - 1 && (u -= p[c]!) > 0) c++;
      if (c === 0) break;
      name += vocab[c];
      ctx.copyWithin(0, 1);
      ctx[CONTEXT - 1] = c;
    }
    out.push(name);
  }
  return out;
}
