import { prepare } from '../compiler/ir/pipeline.ts';
import { renderWgsl } from '../compiler/render/wgsl/render.ts';
import { fusedKernel } from '../optim/storage.ts';
import { adam, adamw, lion, sgd, sgdw } from '../optim/index.ts';
import { writeFileSync } from 'node:fs';
const out = process.argv[2]!; const NEW = process.argv[3] === 'new';
const defs = { sgd: sgd({ lr: 0.1, momentum: 0.9, weightDecay: 0.01 }), sgdw: sgdw({ lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 }), adam: adam({ lr: 1e-2, weightDecay: 0.01 }), adamw: adamw({ lr: 1e-2 }), lion: lion({ lr: 1e-3, weightDecay: 0.1 }) };
const variants: Record<string, [any, any]> = {
  default: [{}, {}], e4: [{ elementsPerThread: 4 }, { elementsPerThread: 4 }], e16: [{ elementsPerThread: 16 }, { elementsPerThread: 16 }],
  nofma: [{ fusedFma: false }, { fusedFma: false }], inexact: [{ exact: false }, { exact: false }],
  div: [{ ablate: ['div'] }, { diagnostics: ['exactDiv'] }], sqrt: [{ ablate: ['sqrt'] }, { diagnostics: ['exactSqrt'] }],
  fallback: [{ ablate: ['fallback'] }, { diagnostics: ['fallbackBranches'] }], nokeep: [{ noKeep: true }, { diagnostics: ['contractionGuards'] }],
  ranges: [{ ranges: false }, { diagnostics: ['rangeAnalysis'] }], tables: [{ tables: false }, { diagnostics: ['tables'] }],
  nonan: [{ unsafeNoNanGuards: true }, { diagnostics: ['nanGuards'] }],
};
for (const [n, def] of Object.entries(defs)) for (const scale of ['bf16', 'fp16', 'f32'] as const) for (const bits of [24, 32, null] as const) {
  const p = prepare(fusedKernel(def as any, { scale, masterWeightBits: bits }));
  for (const [v, o] of Object.entries(variants)) {
    const w = renderWgsl(p, { subgroupMinSize: 32, fusedFma: true, ...o[NEW ? 1 : 0] });
    writeFileSync(`${out}/${n}-${scale}-${bits}-${v}.wgsl`, w.source);
  }
}
const p = prepare(fusedKernel(defs.adamw as any, {}));
writeFileSync(`${out}/nosub.wgsl`, renderWgsl(p, {}).source);
