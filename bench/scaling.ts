// Thread scaling of the FlashAdamW step on the threaded JS backend, measured so that a shared
// machine cannot fake or hide it: rounds alternate 1 and 2 workers on the same model, each timed
// for the same wall time, with the process's CPU time beside it (CPU/wall ≈ cores actually used).
// A round where 2 workers got well under 2 cores was competing with something else; the table
// shows every round and the median ratio over all of them and over the uncontended ones.
//
//   npx tsx bench/scaling.ts [--log2n 24] [--rounds 6] [--seconds 3]

import { availableParallelism, loadavg } from 'node:os';
import { adamw } from '../optim/index.ts';
import { JsThreadsBackend } from '../runtime/backends/js/threads.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import { prng } from '../props/prng.ts';

const arg = (k: string, d: number) => {
  const i = process.argv.indexOf(k);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const log2n = arg('--log2n', 24),
  rounds = arg('--rounds', 6),
  seconds = arg('--seconds', 3);
const n = 2 ** log2n;

function bf16Gradient(): Uint16Array {
  const out = new Uint16Array(n),
    f = new Float32Array(1),
    u = new Uint32Array(f.buffer);
  const r = prng(12345);
  for (let i = 0; i < n; i++) {
    f[0] = (r() - 0.5) * 1e-2;
    out[i] = (u[0]! + 0x7fff + ((u[0]! >>> 16) & 1)) >>> 16;
  }
  return out;
}

const g = bf16Gradient();
const init = () => ({ w: Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.1) });
const runs = await Promise.all(
  [1, 2].map(async (threads) => {
    const backend = new JsThreadsBackend({ threads });
    return {
      threads,
      backend,
      opt: await createOptimizer(adamw({ lr: 1e-3, weightDecay: 0.01 }), init(), { backend }),
    };
  }),
);

async function measure(r: (typeof runs)[number]) {
  for (let i = 0; i < 2; i++) await r.opt.step({ w: g });
  const c0 = process.cpuUsage(),
    t0 = performance.now();
  let steps = 0;
  while (steps < 3 || performance.now() - t0 < seconds * 1000) {
    await r.opt.step({ w: g });
    steps++;
  }
  const wall = (performance.now() - t0) / 1000,
    cpu = process.cpuUsage(c0);
  return { mparam: (n * steps) / wall / 1e6, cores: (cpu.user + cpu.system) / 1e6 / wall };
}

console.log(
  `# bench/scaling: FlashAdamW step at 2^${log2n}, node ${process.version}, ${availableParallelism()} cores, load average before ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
const rows: { one: number; two: number; cores1: number; cores2: number; ratio: number }[] = [];
for (let k = 0; k < rounds; k++) {
  const a = await measure(runs[0]!),
    b = await measure(runs[1]!);
  rows.push({ one: a.mparam, two: b.mparam, cores1: a.cores, cores2: b.cores, ratio: b.mparam / a.mparam });
  console.log(
    `round ${k + 1}: 1 worker ${a.mparam.toFixed(1)} Mparam/s (${a.cores.toFixed(2)} cores), 2 workers ${b.mparam.toFixed(1)} Mparam/s (${b.cores.toFixed(2)} cores): ${(b.mparam / a.mparam).toFixed(2)}x`,
  );
}
for (const r of runs) r.backend.dispose();
const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
};
const clean = rows.filter((r) => r.cores2 >= 1.8);
console.log(
  `\nload average after ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
console.log(
  '\n| round | 1 worker Mparam/s | cores used | 2 workers Mparam/s | cores used | ratio |\n|---|---|---|---|---|---|',
);
rows.forEach((r, i) =>
  console.log(
    `| ${i + 1} | ${r.one.toFixed(1)} | ${r.cores1.toFixed(2)} | ${r.two.toFixed(1)} | ${r.cores2.toFixed(2)} | ${r.ratio.toFixed(2)}x |`,
  ),
);
console.log(
  `\nmedian ratio, all ${rows.length} rounds: ${median(rows.map((r) => r.ratio)).toFixed(2)}x; rounds where 2 workers had ≥ 1.8 cores (${clean.length}): ${median(clean.map((r) => r.ratio)).toFixed(2)}x`,
);
