// WAT text (compiler/render/wasm/render.ts) → a compiled WebAssembly.Module, through wabt. Modules are
// cached by their text, so the same kernel on several backends (or threads) compiles once.

import type wabtInit from 'wabt';
import { BackendError } from '../backend.ts';
import { prepare } from '../../../compiler/ir/pipeline.ts';
import type { Kernel } from '../../../compiler/ir/kernel.ts';
import type { Prepared } from '../../../compiler/ir/pipeline.ts';
import type { WasmRender } from '../../../compiler/render/wasm/render.ts';
import { renderWasm } from '../../../compiler/render/wasm/render.ts';

let wabt: ReturnType<typeof wabtInit> | null = null;
const modules = new Map<string, Promise<WebAssembly.Module>>();

/** Does this engine run WebAssembly SIMD (Node ≥ 16, current browsers)? */
export const simdSupported: boolean = (() => {
  try {
    // (module (func (result v128) (v128.const i32x4 0 0 0 0)))
    return WebAssembly.validate(
      new Uint8Array([
        0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 11,
      ]),
    );
  } catch {
    return false;
  }
})();

export type Engine = 'wasm' | 'js';

/** The engine a JS backend runs: 'auto' picks 'wasm' where WebAssembly SIMD exists. */
export function resolveEngine(requested: unknown, who: string): Engine {
  const e = requested ?? 'auto';
  if (e !== 'auto' && e !== 'wasm' && e !== 'js')
    throw new RangeError(`${who}: engine must be 'auto', 'wasm' or 'js', got ${String(e)}`);
  if (e === 'wasm' && !simdSupported)
    throw new BackendError(
      `${who}: engine 'wasm' needs WebAssembly SIMD, which this JavaScript engine lacks; use engine 'js'`,
    );
  return e === 'auto' ? (simdSupported ? 'wasm' : 'js') : e;
}

/** Compile WAT text to a module (once per distinct text). */
export function watModule(wat: string, name: string): Promise<WebAssembly.Module> {
  let m = modules.get(wat);
  if (!m) {
    m = (async () => {
      // Loaded with the first kernel, not with this module: importing flashoptim does not read
      // wabt's 690 kB. Bundlers still include it (browsers run the wasm engine too), as a chunk of
      // its own where they split code.
      wabt ??= import('wabt').then((m) => m.default());
      const w = await wabt;
      const features = { simd: true, threads: true };
      const parsed = w.parseWat(`${name}.wat`, wat, features);
      try {
        (parsed.validate as (f: object) => void)(features); // index.d.ts omits the features argument validate takes
        return await WebAssembly.compile(parsed.toBinary({}).buffer as Uint8Array<ArrayBuffer>);
      } finally {
        parsed.destroy();
      }
    })();
    modules.set(wat, m);
    m.catch(() => modules.delete(wat));
  }
  return m;
}

export interface WasmKernel extends WasmRender {
  readonly prepared: Prepared;
  readonly module: WebAssembly.Module;
}

/** Prepare, render and compile a kernel for WebAssembly. */
export async function compileWasm(k: Kernel, opts: { shared?: boolean } = {}): Promise<WasmKernel> {
  const prepared = prepare(k);
  const r = renderWasm(prepared, opts);
  return { ...r, prepared, module: await watModule(r.wat, k.name) };
}

/** The JS functions a kernel module imports (exp2 and log2 as semantics.ts computes them). */
export const imports = (mem: WebAssembly.Memory) => ({
  env: { mem, exp2: (x: number) => Math.fround(2 ** x), log2: (x: number) => Math.fround(Math.log2(x)) },
});
