// Objects kept from step to step so a backend sees the same ones again: a backend plans a launch
// once per bindings object (runtime/backends/webgpu/webgpu.ts), and planning costs the host more
// than a small step costs the GPU. Keys name objects by identity; the map is bounded, so buffers a
// caller makes afresh every step cost a re-plan, never unbounded memory.

import { Ids } from './ids.ts';

const LIMIT = 4096;

export class Kept<V> {
  private readonly ids = new Ids();
  private readonly map = new Map<string, V>();

  /** A key naming `parts` (objects by identity, the rest as written). */
  key(...parts: readonly unknown[]): string {
    return parts.map((p) => (typeof p !== 'object' || p === null ? String(p) : `#${this.ids.of(p)}`)).join(' ');
  }

  /** The value kept under `key`, made by `make` the first time. */
  get(key: string, make: () => V): V {
    let v = this.map.get(key);
    if (v === undefined) {
      if (this.map.size >= LIMIT) this.map.clear();
      this.map.set(key, (v = make()));
    }
    return v;
  }
}
