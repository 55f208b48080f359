// Which WGSL binding ("slot") holds each field. WebGPU's default limit is 8 storage buffers a
// shader stage, and FlashAdamW alone has 7 fields beside uniforms, rowOf, counters and tables; so
// fields that live in one GPUBuffer (the arena's views of one chunk) can share a binding, each at
// its own base (in the slot's units, a per-launch parameter: P.b). The runtime picks the plan from
// the buffers a launch binds (runtime/backends/webgpu/slots.ts); the default is one slot per field.

import type { Access, FieldLayout } from './layout.ts';
import { BIND } from './layout.ts';

export interface Slot {
  /** array<vec4<u32>>, array<u32> or array<atomic<u32>>: every field in it is reached that way. */
  readonly type: Access;
  readonly writable: boolean;
  /** Indices (FieldLayout.index) of the fields it holds. */
  readonly fields: readonly number[];
}

export interface BindingPlan {
  readonly slots: readonly Slot[];
  /** rowOf sits in a buffer some binding writes: WebGPU wants every binding of it writable. */
  readonly rowOfWritable: boolean;
  /** Fields (FieldLayout.index) at base 0 in every launch of the plan (a slot of their own): no offset. */
  readonly zeroBase?: readonly number[];
}

export const slotBinding = (s: number): number => BIND.firstField + s;

/** One slot per field, typed by the field's own access (what every kernel bound before plans). */
export function defaultPlan(layouts: readonly FieldLayout[]): BindingPlan {
  const slots = layouts.map((f) => ({
    type: f.access,
    writable: f.written || f.access === 'atomic',
    fields: [f.index],
  }));
  return { slots, rowOfWritable: false, zeroBase: layouts.map((f) => f.index) };
}

/** What the WGSL and the pipeline layout depend on (not the bases, which are per launch). */
export const planKey = (p: BindingPlan): string =>
  p.slots.map((s) => `${s.type}${s.writable ? '+' : ''}:${s.fields.join(',')}`).join(' ') +
  (p.rowOfWritable ? ' R+' : '') +
  (p.zeroBase?.length ? ` 0:${p.zeroBase.join(',')}` : '');

/** Each field's slot, after checking the plan can reach every field as its layout needs. */
export function slotsOf(layouts: readonly FieldLayout[], windowed: readonly string[], p: BindingPlan): number[] {
  const slotOf: number[] = [];
  p.slots.forEach((s, i) => s.fields.forEach((f) => (slotOf[f] = slotOf[f] === undefined ? i : -1)));
  for (const f of layouts) {
    const s = p.slots[slotOf[f.index] ?? -1];
    const bad = (why: string) => new Error(`wgsl: binding plan: field ${f.field} ${why}`);
    if (!s) throw bad('is in no slot, or in two');
    // vec4 slots hold whole aligned spans; atomics are the only way to store part of a shared word.
    if (s.type === 'vec4' && (f.access !== 'vec4' || windowed.includes(f.field))) throw bad('cannot be read as vec4');
    if (f.access === 'atomic' && s.type !== 'atomic') throw bad('needs an atomic slot');
    if ((f.written || s.type === 'atomic') && !s.writable) throw bad('is in a read-only slot');
  }
  if (slotOf.length !== layouts.length) throw new Error('wgsl: binding plan names a field the kernel lacks');
  return slotOf;
}

/** The WGSL declaration of slot `s`. */
export function declareSlot(s: Slot, i: number): string {
  const t = s.type === 'vec4' ? 'vec4<u32>' : s.type === 'atomic' ? 'atomic<u32>' : 'u32';
  return `@group(0) @binding(${slotBinding(i)}) var<storage, ${s.writable ? 'read_write' : 'read'}> S${i}: array<${t}>;`;
}
