// One code path, two drivers. A session's work is written once as a generator that yields the
// backend operations it needs (write, read, compile, run) and receives their results; `drive`
// runs it with awaits on any backend, `driveSync` within the call on a backend whose work finishes
// synchronously (the JS backend). The TF.js adapter steps synchronously that way, so model.fit
// never runs a forward pass before the step of the previous batch has landed.

import type { FieldArray, Kernel } from '../compiler/ir/kernel.ts';
import type { Backend, DeviceBuffer, Item, Launch, Program, SyncBackend } from './backends/backend.ts';
import { isSync } from './backends/backend.ts';

export type Op =
  | { readonly op: 'write'; readonly buf: DeviceBuffer; readonly data: FieldArray; readonly offset: number }
  | { readonly op: 'read'; readonly buf: DeviceBuffer; readonly offset: number; readonly length: number }
  | { readonly op: 'compile'; readonly kernel: Kernel }
  | { readonly op: 'run'; readonly program: Program; readonly launch: Launch }
  | { readonly op: 'submit'; readonly items: readonly Item[] };

/** A piece of work: yields operations, gets each one's result back, returns T. */
export type Work<T> = Generator<Op, T, unknown>;

export const write = (buf: DeviceBuffer, data: FieldArray, offset = 0): Op => ({ op: 'write', buf, data, offset });
export const read = (buf: DeviceBuffer, offset: number, length: number): Op => ({ op: 'read', buf, offset, length });
export const compile = (kernel: Kernel): Op => ({ op: 'compile', kernel });
export const run = (program: Program, launch: Launch): Op => ({ op: 'run', program, launch });
export const submit = (items: readonly Item[]): Op => ({ op: 'submit', items });

/** `counts` added into `into` (u32, modulo 2^32): a backend without counters on the device. */
const added = (old: FieldArray, counts: readonly number[]) => Uint32Array.from(counts, (c, i) => (old[i]! + c) >>> 0);

async function runOn(b: Backend, p: Program, l: Launch): Promise<number[]> {
  if (!l.counters || b.countsOnDevice) return b.run(p, l);
  const counts = await b.run(p, { ...l, counters: null });
  await b.write(l.counters, added(await b.read(l.counters, 0, counts.length), counts));
  return [];
}

function runOnSync(b: SyncBackend, p: Program, l: Launch): number[] {
  if (!l.counters || b.countsOnDevice) return b.runSync(p, l);
  const counts = b.runSync(p, { ...l, counters: null });
  b.writeSync(l.counters, added(b.readSync(l.counters, 0, counts.length), counts));
  return [];
}

function submitOn(b: Backend, items: readonly Item[]): Promise<unknown> {
  if (!b.submit) throw new TypeError(`backend ${b.name} cannot submit copies and launches together`);
  return b.submit(items);
}

/** Run `w` on any backend. */
export async function drive<T>(b: Backend, w: Work<T>): Promise<T> {
  let next = w.next();
  while (!next.done) {
    const o = next.value;
    let result: unknown;
    try {
      result = await (o.op === 'write'
        ? b.write(o.buf, o.data, o.offset)
        : o.op === 'read'
          ? b.read(o.buf, o.offset, o.length)
          : o.op === 'compile'
            ? b.compile(o.kernel)
            : o.op === 'run'
              ? runOn(b, o.program, o.launch)
              : submitOn(b, o.items));
    } catch (e) {
      next = w.throw(e); // lets the work's finally blocks free what it allocated
      continue;
    }
    next = w.next(result);
  }
  return next.value;
}

/** Run `w` within this call; the backend must finish its work synchronously. */
export function driveSync<T>(b: SyncBackend, w: Work<T>): T {
  let next = w.next();
  while (!next.done) {
    const o = next.value;
    let result: unknown;
    try {
      result =
        o.op === 'write'
          ? b.writeSync(o.buf, o.data, o.offset)
          : o.op === 'read'
            ? b.readSync(o.buf, o.offset, o.length)
            : o.op === 'compile'
              ? b.compileSync(o.kernel)
              : o.op === 'run'
                ? runOnSync(b, o.program, o.launch)
                : (() => {
                    throw new TypeError(`backend ${b.name} cannot submit synchronously`);
                  })();
    } catch (e) {
      next = w.throw(e);
      continue;
    }
    next = w.next(result);
  }
  return next.value;
}

/** The synchronous face of `b`, or an error naming what needs it. */
export function syncOf(b: Backend, what: string): SyncBackend {
  if (!isSync(b))
    throw new TypeError(`${what} needs a backend that works synchronously (the JS backend); ${b.name} is asynchronous`);
  return b;
}
