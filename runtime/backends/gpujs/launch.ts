// One launch on gpu.js (GpujsBackend.run): the launch's scalars in `aux`, the bound fields checked
// and (webgpu) uploaded, the plan's passes called in order, and only then the new arrays swapped in
// for the old ones, so that every pass reads the fields as they were (compiler/render/gpujs/render.ts).
// A reduction pass's launch in webgpu mode (`Launch.pass`) has lane passes instead of partial
// outputs: their lanes go to the combine (combine.ts), and the level's last launch ends with the
// combine's rows kernel, so the launch leaves the per-row values the next level and the update read.

import type { FieldArray } from '../../../compiler/ir/kernel.ts';
import { counterValue, fields } from '../../../compiler/ir/kernel.ts';
import type { GpujsPass, GpujsPlan } from '../../../compiler/render/gpujs/plan.ts';
import {
  BLOCKS_ARRAY,
  HEAD,
  REDUCTIONS_ARRAY,
  STEP_ARRAY,
  lanesName,
  sharedName,
} from '../../../compiler/render/gpujs/plan.ts';
import type { DeviceBuffer, Launch, Program } from '../backend.ts';
import { BackendError } from '../backend.ts';
import type { GpujsCombine } from './combine.ts';
import type { GpujsKernel, Part } from './device.ts';
import { hostArray, isDeviceArray } from './device.ts';

export interface GpujsProgram extends Program {
  readonly plan: GpujsPlan;
  readonly kernels: Map<string, GpujsKernel>;
}

/** What a launch needs of a gpu.js buffer (gpujs.ts GpujsBuffer is one): its f32 arrays. */
interface LaunchArrays extends DeviceBuffer {
  parts: Part[];
}

/** What the backend lends a launch. */
export interface GpujsLaunchHost<B extends LaunchArrays> {
  /** `b` itself when it is a live buffer of the backend; else a BackendError naming `op`. */
  check(b: B, op: string): B;
  /** `c` itself when it is a combine this backend made; else a BackendError naming `op`. */
  combine(c: Launch<B>['reductions'], op: string): GpujsCombine<B>;
  read(b: B, offset: number, length: number): Promise<FieldArray>;
  /** webgpu: move `b`'s host arrays to the device once, instead of once per kernel call that reads them. */
  upload(b: B): Promise<void>;
  /** A new gpu.js kernel with `length` outputs. */
  kernel(source: string, length: number): GpujsKernel;
  /** Count one launch. */
  launched(): void;
  /** Count one kernel call. */
  called(): void;
  /** `extra` bytes of new arrays are held beside the buffers now (the backend's peakBytes). */
  held(extra: number): void;
}

/** The pass's gpu.js kernel for `length` outputs, made once per program and length. */
function kernelFor<B extends LaunchArrays>(
  host: GpujsLaunchHost<B>,
  prog: GpujsProgram,
  pass: GpujsPass,
  length: number,
): GpujsKernel {
  const key = `${pass.name}#${length}`;
  let k = prog.kernels.get(key);
  if (!k) {
    k = host.kernel(pass.source, length);
    prog.kernels.set(key, k);
  }
  return k;
}

/** GpujsBackend.run: one launch's passes, and its counters' counts (wrapped as their type). */
export async function runLaunch<B extends LaunchArrays>(
  host: GpujsLaunchHost<B>,
  prog: GpujsProgram,
  l: Launch<B>,
): Promise<number[]> {
  const { plan, prepared } = prog;
  const G = plan.groupSize,
    S = prepared.columns.length;
  const nGroups = Math.ceil(l.length / G);
  const [g0, g1] = l.groups;
  if (!(0 <= g0 && g0 <= g1 && g1 <= nGroups))
    throw new BackendError(`gpujs.run: groups [${g0}, ${g1}) outside [0, ${nGroups})`);
  const counts = new Array<number>(prepared.kernel.counters.length).fill(0);
  const lanes = lanesOf(host, prog, l);
  if (l.length === 0 || g0 === g1) {
    host.launched();
    if (lanes && l.pass!.last) await lanes.combine.run(l.pass!.level);
    return counts;
  } // nothing to read or write
  const bound = new Map<string, B>();
  const fieldOf = (name: string): B => {
    let b = bound.get(name);
    if (!b) {
      const d = l.bindings[name];
      if (!d) throw new BackendError(`gpujs.run: field ${name} is not bound (kernel ${prepared.kernel.name})`);
      b = host.check(d, 'run');
      bound.set(name, b);
    }
    return b;
  };
  // aux: the launch scalars, constants, uniform rows, and the row of each group.
  const rows = l.rowOf ? await host.read(l.rowOf, 0, nGroups) : null;
  const nRows = Math.max(1, l.uniforms.length / Math.max(1, S));
  const rowsAt = plan.uniformBase + l.uniforms.length;
  const aux = new Float32Array(rowsAt + (rows ? nGroups : 1));
  aux.set([l.length, g0, g1, rowsAt, rows ? 1 : 0, l.reductions?.reductions.length ?? 0]);
  aux.set(plan.constants, HEAD);
  aux.set(l.uniforms, plan.uniformBase);
  if (rows) {
    // (With no uniform columns the table is empty and a row index selects nothing.)
    if (S > 0)
      for (let g = g0; g < g1; g++)
        if (rows[g]! >= nRows)
          throw new BackendError(`gpujs.run: rowOf[${g}] = ${rows[g]} but there are ${nRows} uniform rows`);
    aux.set(rows, rowsAt);
  }
  const auxArg = aux;
  for (const f of fields(prepared.kernel)) {
    if (lanes?.fields.has(f.field)) continue; // the combine's lanes, not a field
    const need = prepared.kernel.windowed.includes(f.field)
        ? Math.max(0, Math.min(l.length, g1 * G) - g0 * G)
        : f.axis === 'element'
          ? l.length
          : nGroups,
      have = fieldOf(f.field).length;
    if (have < need)
      throw new BackendError(
        `gpujs.run: field ${f.field} has ${have} entries, needs ${need} (kernel ${prepared.kernel.name})`,
      );
  }
  const reds = await reductionsOf(host, prog, l);
  for (const name of new Set(plan.passes.flatMap((ps) => ps.arrays))) {
    if (name !== 'aux' && !name.startsWith('combine:') && !name.startsWith('reduction:') && !name.startsWith('shared:'))
      await host.upload(fieldOf(name.split(':')[0]!));
  }
  const combined = lanes ? await lanes.arrays() : null;

  const reductions: Part[] = [];
  const shared = new Map<string, Part>();
  let extra = 0;
  const fresh = new Map<string, Part[]>();
  const freshLanes = new Map<number, Part>();
  host.launched();
  try {
    for (const pass of plan.passes) {
      const args = pass.arrays.map((a): Part => {
        if (a === 'aux') return auxArg;
        if (a === REDUCTIONS_ARRAY) return reds!;
        if (a.startsWith('combine:')) return combined!.get(a)!;
        if (a.startsWith('reduction:')) return reductions[Number(a.slice('reduction:'.length))]!;
        if (a.startsWith('shared:')) return shared.get(a)!;
        const [field, half] = a.split(':');
        const b = fieldOf(field!);
        return b.parts[half === 'l' ? 1 : 0]!;
      });
      const t = pass.target;
      const length =
        t.kind === 'field'
          ? fieldOf(t.field).length
          : t.kind === 'shared'
            ? l.length
            : t.kind === 'lanes'
              ? lanes!.combine.laneCount
              : nGroups;
      if (length === 0) continue;
      host.called();
      const out = await kernelFor(host, prog, pass, length).run(args);
      extra += length * 4;
      host.held(extra);
      if (t.kind === 'reduction') reductions[t.index] = out;
      else if (t.kind === 'lanes') freshLanes.set(t.reduction, out);
      else if (t.kind === 'shared') shared.set(sharedName(t.index), out);
      else if (t.kind === 'field') {
        const parts = fresh.get(t.field) ?? [];
        parts[t.half === 'l' ? 1 : 0] = out;
        fresh.set(t.field, parts);
      } else {
        const sums = await hostArray(out);
        let s = 0;
        for (let g = g0; g < g1; g++) s += sums[g]!;
        counts[t.index]! += t.half === 'h' ? s * 65536 : s;
        if (isDeviceArray(out)) out.delete();
      }
    }
  } finally {
    for (const m of [...reductions, ...shared.values()]) if (m && isDeviceArray(m)) m.delete();
  }
  // The lanes so far of this step (a later chunk's launch carries them on), then, after the
  // level's last launch, the combine: the values the next level and the update read.
  for (const [i, p] of freshLanes) lanes!.combine.setLanes(i, p);
  if (lanes && l.pass!.last) await lanes.combine.run(l.pass!.level);
  // Every pass has read the old fields: now the new arrays replace them.
  for (const [field, parts] of fresh) {
    const b = fieldOf(field);
    parts.forEach((p, i) => {
      const old = b.parts[i];
      if (old && isDeviceArray(old)) old.delete();
      b.parts[i] = p;
    });
  }
  // Counters wrap modulo 2^32 as their type, as on every backend (compiler/ir/kernel.ts).
  return prepared.kernel.counters.map((c, i) => counterValue(c, counts[i]!));
}

/** The combine's results where the kernel reads `$red` columns on the device (uploaded), else null. */
async function reductionsOf<B extends LaunchArrays>(
  host: GpujsLaunchHost<B>,
  prog: GpujsProgram,
  l: Launch<B>,
): Promise<Part | null> {
  if (!prog.plan.passes.some((ps) => ps.arrays.includes(REDUCTIONS_ARRAY))) return null;
  const c = l.reductions;
  if (!c)
    throw new BackendError(
      `gpujs.run: kernel ${prog.prepared.kernel.name} reads reduction results ($red columns), but the launch names no reductions`,
    );
  const v = host.check(c.values, 'run');
  await host.upload(v);
  return v.parts[0]!;
}

/**
 * A reduction pass's lane passes (webgpu mode): the launch's combine, the `$red` fields its lanes
 * stand for, and the arrays they read (`arrays`, uploaded when called); null for another kernel.
 */
function lanesOf<B extends LaunchArrays>(host: GpujsLaunchHost<B>, prog: GpujsProgram, l: Launch<B>) {
  const fields = new Set(prog.plan.passes.flatMap((ps) => (ps.target.kind === 'lanes' ? [ps.target.field] : [])));
  if (fields.size === 0) return null;
  const name = prog.prepared.kernel.name;
  const pass = l.pass;
  if (!pass)
    throw new BackendError(
      `gpujs.run: kernel ${name} is a reduction pass, whose launch must say its level and step (Launch.pass)`,
    );
  const combine = host.combine(l.reductions, 'run');
  const origin = l.origin ?? 0;
  const [a, z] = [origin + l.groups[0], origin + l.groups[1]];
  if (a < z && (a < pass.groups[0] || z > pass.groups[1]))
    throw new BackendError(
      `gpujs.run: kernel ${name}: groups [${a}, ${z}) of the arena outside the step's [${pass.groups[0]}, ${pass.groups[1]})`,
    );
  const arrays = async (): Promise<Map<string, Part>> => {
    const m = new Map<string, Part>([[STEP_ARRAY, Float32Array.of(origin, pass.groups[0], pass.groups[1])]]);
    await host.upload(combine.blocks);
    m.set(BLOCKS_ARRAY, combine.blocks.parts[0]!);
    for (const ps of prog.plan.passes)
      if (ps.target.kind === 'lanes') {
        const b = combine.lanes[ps.target.reduction]!;
        await host.upload(b);
        m.set(lanesName(ps.target.reduction), b.parts[0]!);
      }
    return m;
  };
  return { combine, fields, arrays };
}
