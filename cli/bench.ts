// `flashoptim bench`: the CPU benchmark of bench/cpu.ts (its `bench` and `table`, not a copy), with
// progress on stderr (a redrawn line on a terminal, a line per measurement otherwise) and the
// markdown table on stdout. bench/cpu.ts needs TF.js (a dev dependency, for the tf.train.adam row)
// and ships with the repository, not the package: it is found beside this folder when the command
// runs, through a path the compiler does not follow, so the package's dist/ never includes it.

import { existsSync } from 'node:fs';
import type { Io } from './args.ts';
import { UsageError, choice, integers, number, parse } from './args.ts';
import { writeOutput } from './files.ts';

const GPUJS = ['webgl2', 'webgl', 'headlessgl', 'webasm', 'cpu', 'webgpu'] as const;

/** What this command uses of bench/cpu.ts (stated here: importing its types would pull it into dist/). */
interface Row {
  readonly method: string;
  readonly log2n: number;
  readonly mparamPerS: number;
}
interface CpuBench {
  bench(o: {
    sizes: readonly number[];
    minSeconds: number;
    threads: readonly number[];
    gpujs: readonly string[];
    webgpu: boolean;
    log: (r: Row) => void;
  }): Promise<Row[]>;
  table(rows: readonly Row[]): string;
}

export const benchHelp = `Usage: flashoptim bench [options]

Time FlashAdamW's fused step on the CPU (the JS backend's WebAssembly and JavaScript engines, the
threaded backend) against tf.train.adam, a plain fp32 AdamW loop and a memcpy of FlashAdamW's
state. Progress goes to stderr, the table (Mparam/s, bytes per parameter) to stdout.

  --sizes <list>         log2 of the parameter counts, e.g. 20,22      default: 20,21,22,23,24
  --threads <list>       worker counts of the threaded backend, or none  default: 1,2
  --min-seconds <s>      time each measurement at least this long       default: 2
  --webgpu               also FlashAdamW on WebGPU (Node: Dawn, a Vulkan driver)
  --gpujs <modes>        also gpu.js modes: ${GPUJS.join(', ')}
  --json <file>          also write every row as JSON (atomically)
  -h, --help             this text

Quick look: flashoptim bench --sizes 20 --min-seconds 0.2`;

export async function benchCommand(argv: readonly string[], io: Io): Promise<number> {
  const who = 'flashoptim bench';
  const a = parse(
    who,
    argv,
    {
      sizes: { type: 'string' },
      threads: { type: 'string' },
      'min-seconds': { type: 'string' },
      webgpu: { type: 'boolean' },
      gpujs: { type: 'string' },
      json: { type: 'string' },
    },
    [],
  );
  if (!a) {
    io.out(benchHelp + '\n');
    return 0;
  }
  const v = (k: string, d: string) => String(a.values[k] ?? d);
  const sizes = integers(who, '--sizes', v('sizes', '20,21,22,23,24'), 4, 28);
  if (sizes.length === 0) throw new UsageError(`${who}: --sizes must name at least one size, got "${v('sizes', '')}"`);
  const threads = integers(who, '--threads', v('threads', '1,2'), 1, 64);
  const minSeconds = number(who, '--min-seconds', v('min-seconds', '2'), 0, 3600);
  const gpujs =
    a.values['gpujs'] === undefined
      ? []
      : v('gpujs', '')
          .split(',')
          .map((m) => choice(who, '--gpujs', m, GPUJS));
  const json = a.values['json'] as string | undefined;

  const source = new URL('../bench/cpu.ts', import.meta.url);
  if (!existsSync(source))
    throw new UsageError(
      `${who}: the benchmark (bench/cpu.ts) comes with the repository, not the package; run it from a clone after npm ci`,
    );
  const { bench, table } = (await import(/* @vite-ignore */ source.href)) as CpuBench;
  const t0 = performance.now();
  let done = 0;
  const rows = await bench({
    sizes,
    threads,
    minSeconds,
    gpujs,
    webgpu: a.values['webgpu'] === true,
    log: (r) => {
      done++;
      const line = `[${done}] ${((performance.now() - t0) / 1000).toFixed(1)} s  2^${r.log2n}  ${r.method}: ${r.mparamPerS.toFixed(1)} Mparam/s`;
      // A terminal gets one line redrawn in place; a log or a pipe gets every measurement.
      io.err(io.tty ? `\r\x1b[2K${line}` : `${line}\n`);
    },
  });
  if (io.tty) io.err('\n');
  io.out(table(rows) + '\n');
  if (json)
    await writeOutput(who, json, new TextEncoder().encode(JSON.stringify({ node: process.version, rows }, null, 1)));
  return 0;
}
