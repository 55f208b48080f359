// A TypeScript user with `module: nodenext` (test/packaging.test.ts type-checks this against the
// installed package's declarations, with skipLibCheck off): the public API, types included.
import {
  adamw,
  createOptimizer,
  defineOptimizer,
  dsl,
  ema,
  momentum,
  saveCheckpointFile,
  type OptimizerDef,
  type Session,
} from 'flashoptim';
import { compile, kernel, type Kernel } from 'flashoptim/compiler';
import { JsThreadsBackend } from 'flashoptim/threads';

const signum = defineOptimizer({
  name: 'signum',
  hyper: { lr: 1e-3, beta: 0.9 },
  state: { m: momentum() },
  uniforms: (h) => ({ oneMinusBeta: 1 - h.beta }),
  update: ({ p, g, m }, u) => {
    const m1 = ema(m!, g!, u('beta'), u('oneMinusBeta'));
    return { p: dsl.sub(p!, dsl.mul(u('lr'), dsl.sign(m1))), m: m1 };
  },
});
const def: OptimizerDef<{ lr: number; beta: number }> = signum({ lr: 0.01 });
const opt: Session<{ lr: number; beta: number }> = await createOptimizer(def, { w: new Float32Array(64) });
await opt.step({ w: new Float32Array(64).fill(1) });
await opt.setHyper({ lr: 5e-3 });
const perParam: number = opt.memory().bytesPerParam;
await saveCheckpointFile(await createOptimizer(adamw({ lr: 1e-3 }), { w: new Float32Array(4) }), '/dev/null');
const threaded = await createOptimizer(
  adamw({ lr: 1e-3 }),
  { w: new Float32Array(64) },
  {
    backend: new JsThreadsBackend({ threads: 2 }),
  },
);

// The compiler by hand: SGD as one kernel over f32 fields.
const { field, mul, sub, uniform } = dsl;
const sgdKernel: Kernel = kernel({
  name: 'sgd',
  outputs: [
    {
      field: 'p',
      storage: 'f32',
      axis: 'element',
      value: sub(field('p', 'f32'), mul(uniform('lr'), field('g', 'f32'))),
    },
  ],
});
const p = new Float32Array([1, 2]);
compile(sgdKernel, { target: 'js' }).run({ fields: { p, g: new Float32Array([1, 1]) }, uniforms: { lr: 0.5 } });
export { perParam, threaded, p };
