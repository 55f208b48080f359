// A Codec says how one logical f32 value per element is stored: which fields (element-axis or
// group-axis), how to decode them into the value, and how to encode a new value into them.
// Both directions are DSL expressions, so the compiler fuses them into every kernel (the optimizer
// never knows how its state is stored). A codec that needs a group scale uses groupMax in encode.

import type { Axis, Expr, Storage } from '../compiler/ir/ir.ts';
import { load } from '../compiler/ir/ir.ts';
import type { Output } from '../compiler/ir/kernel.ts';
import { storageBytes } from '../compiler/ir/kernel.ts';

export interface CodecField {
  /** Suffix of the stored field's name: '' is the field itself, e.g. 'scale' gives `m_scale`. */
  readonly name: string;
  readonly storage: Storage;
  readonly axis: Axis;
}

export interface Codec {
  readonly name: string;
  readonly fields: readonly CodecField[];
  /** The f32 value, from the loaded fields (in `fields` order). */
  decode(stored: readonly Expr[]): Expr;
  /** What to store for the new f32 `value` (in `fields` order). */
  encode(value: Expr): readonly Expr[];
  /**
   * For a codec that stores a function a = of(value) (the √ of Adam's v): decode of the stored
   * fields to a itself, and encode from a. optim/fuse.ts keeps an element's old value as its
   * decoded a, so the encode reuses the update's own of(value) (one √ per element, not two).
   */
  readonly preimage?: {
    of(value: Expr): Expr;
    decode(stored: readonly Expr[]): Expr;
    encode(a: Expr): readonly Expr[];
  };
}

/** The stored field name of a codec field for a tensor-level field `base` (`m` + `scale` → `m_scale`). */
export const storedName = (base: string, f: CodecField): string => (f.name ? `${base}_${f.name}` : base);

/** Bytes per element a codec holds, group-axis fields amortised over `groupSize`. */
export function codecBytes(c: Codec, groupSize: number): number {
  return c.fields.reduce((s, f) => s + storageBytes[f.storage] / (f.axis === 'group' ? groupSize : 1), 0);
}

/** Loads of every stored field of `c` for the logical field `base`, in `c.fields` order. */
export const loadStored = (base: string, c: Codec): Expr[] =>
  c.fields.map((f) => load(storedName(base, f), f.storage, f.axis));

/** The f32 value of the logical field `base` stored with `c`: decode of its loaded fields. */
export const decodeStored = (base: string, c: Codec): Expr => c.decode(loadStored(base, c));

/** Kernel outputs that store `value` into the fields of `base` with `c` (each field's expression from `encode`). */
export function encodeStored(base: string, c: Codec, value: Expr): Output[] {
  const enc = c.encode(value);
  return c.fields.map((f, i) => ({ field: storedName(base, f), storage: f.storage, axis: f.axis, value: enc[i]! }));
}
