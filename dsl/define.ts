// defineCodec: how a user adds a storage format. The codec is checked once, symbolically, when it
// is defined (field names, storages, axes, the types decode and encode produce, group fields that
// only depend on group reductions), so a mistake fails here with the codec's and field's names
// instead of deep inside a compiled kernel.

import type { Axis, Expr, Storage } from '../compiler/ir/ir.ts';
import { loadType } from '../compiler/ir/ir.ts';
import { elementwise } from '../compiler/ir/kernel.ts';
import type { Codec, CodecField } from './codec.ts';
import { field } from './ops.ts';

export interface CodecSpec {
  readonly name?: string;
  readonly fields: readonly CodecField[];
  /** The f32 value from the loaded fields (in `fields` order). */
  readonly decode: (stored: readonly Expr[]) => Expr;
  /** What to store for an f32 value (in `fields` order); group fields may only use groupMax(…). */
  readonly encode: (value: Expr) => readonly Expr[];
  /** Whether the codec needs a group reduction; inferred from group-axis fields when omitted. */
  readonly group?: boolean;
}

export interface DefinedCodec extends Codec {
  readonly group: boolean;
}

const STORAGES: readonly Storage[] = ['f32', 'i32', 'u32', 'u16', 'i16', 'u8', 'i8'];
const AXES: readonly Axis[] = ['element', 'group'];
const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

let anonymous = 0;

export function defineCodec(spec: CodecSpec): DefinedCodec {
  const name = spec.name ?? `codec${anonymous++}`;
  const where = `defineCodec(${name})`;
  if (typeof name !== 'string' || !/^[A-Za-z0-9_+.-]+$/.test(name))
    throw new TypeError(`${where}: name must be letters, digits or _ + . -, got ${JSON.stringify(name)}`);
  if (!Array.isArray(spec.fields) || spec.fields.length === 0)
    throw new TypeError(`${where}: fields must be a non-empty array`);
  if (typeof spec.decode !== 'function' || typeof spec.encode !== 'function')
    throw new TypeError(`${where}: decode and encode must be functions`);
  const seen = new Set<string>();
  spec.fields.forEach((f, i) => {
    const label = `${where}: field ${i} (${JSON.stringify(f?.name)})`;
    if (typeof f?.name !== 'string' || (f.name !== '' && !NAME.test(f.name)))
      throw new TypeError(`${label}: name must be '' or an identifier`);
    if (seen.has(f.name)) throw new TypeError(`${label}: name is used twice`);
    seen.add(f.name);
    if (!STORAGES.includes(f.storage))
      throw new TypeError(`${label}: storage must be one of ${STORAGES.join(', ')}, got ${JSON.stringify(f.storage)}`);
    if (!AXES.includes(f.axis))
      throw new TypeError(`${label}: axis must be 'element' or 'group', got ${JSON.stringify(f.axis)}`);
  });
  if (!spec.fields.some((f) => f.axis === 'element'))
    throw new TypeError(`${where}: needs at least one element-axis field to hold per-element information`);
  const hasGroup = spec.fields.some((f) => f.axis === 'group');
  if (spec.group === false && hasGroup) throw new TypeError(`${where}: group is false but a field has axis 'group'`);

  // Symbolic checks: run decode and encode once on probe loads.
  const probe = spec.fields.map((f) => field(`__probe_${f.name || 'value'}`, f.storage, f.axis));
  const decoded = spec.decode(probe);
  if (!decoded || typeof decoded !== 'object' || decoded.type !== 'f32')
    throw new TypeError(`${where}: decode must return an f32 expression, got ${describe(decoded)}`);
  const encoded = spec.encode(field('__probe_input', 'f32'));
  if (!Array.isArray(encoded) || encoded.length !== spec.fields.length)
    throw new TypeError(
      `${where}: encode must return ${spec.fields.length} expressions (one per field), got ${Array.isArray(encoded) ? encoded.length : describe(encoded)}`,
    );
  const memo = new Map<Expr, boolean>();
  spec.fields.forEach((f, i) => {
    const e = encoded[i] as Expr | undefined;
    const want = loadType(f.storage);
    if (!e || typeof e !== 'object' || e.type !== want)
      throw new TypeError(
        `${where}: encode's value for field ${JSON.stringify(f.name)} (${f.storage}) must be a ${want}, got ${describe(e)}`,
      );
    if (f.axis === 'group' && elementwise(e, memo))
      throw new TypeError(
        `${where}: group field ${JSON.stringify(f.name)} depends on the element value outside groupMax(…)`,
      );
  });
  return { name, fields: spec.fields, decode: spec.decode, encode: spec.encode, group: spec.group ?? hasGroup };
}

function describe(x: unknown): string {
  if (x && typeof x === 'object' && 'type' in x) return `a ${(x as Expr).type} expression`;
  return Array.isArray(x) ? 'an array' : (JSON.stringify(x) ?? String(x));
}
