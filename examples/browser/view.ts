// What the page shows, written from the report on every update: which backend and why, progress,
// speed, bytes per parameter (flashoptim's own from opt.memory(), the page's, and the two together
// against fp32 AdamW's 16), generated names and the kernel source.

import type { Memory } from '../../index.ts';

export interface Point {
  readonly step: number;
  readonly loss: number;
}
export interface Report {
  state: 'starting' | 'training' | 'done' | 'error';
  /** The backend that runs the kernel: 'webgpu', or the JS backend's engine ('wasm' or 'js'). */
  backend: string;
  device: string;
  why: string;
  steps: number;
  step: number;
  params: number;
  train: Point[];
  val: Point[];
  stepsPerSecond: number;
  /** Share of each step's time spent in opt.step (the rest: reading weights back, forward, backward). */
  optimizerShare: number;
  memory: Memory | null;
  /** Bytes per parameter the page itself holds: its bf16 copy of the weights and the bf16 gradients. */
  pageBytesPerParam: number;
  samples: string[];
  source: string;
  error: string;
}

const $ = (id: string) => document.getElementById(id)!;
const fixed = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : '–');

export function showReport(r: Report): void {
  document.body.dataset['state'] = r.state;
  const where =
    r.backend === 'webgpu' ? 'WebGPU' : r.backend === 'wasm' ? 'WebAssembly (JsBackend)' : 'JavaScript (JsBackend)';
  $('backend').textContent = r.backend ? `${where}: ${r.device}` : 'choosing a backend…';
  $('why').textContent = r.why;
  $('progress').textContent =
    r.state === 'error'
      ? `error: ${r.error}`
      : `${r.state}: step ${r.step} of ${r.steps}, ${r.params} parameters, batches of 32 (3 characters → the next)`;
  $('progress').className = r.state === 'error' ? 'error' : '';
  const last = r.train.at(-1)?.loss ?? NaN,
    val = r.val.at(-1)?.loss ?? NaN;
  const m = r.memory;
  const rows: [string, string][] = [
    ['training loss (last 10 steps)', fixed(last)],
    ['validation loss', fixed(val)],
    ['steps per second', `${fixed(r.stepsPerSecond, 1)} (optimizer step ${fixed(100 * r.optimizerShare, 0)}% of it)`],
  ];
  if (m) {
    const fields = Object.entries(m.perParam)
      .map(([k, v]) => `${k} ${+v.toFixed(4)}`)
      .join(' + ');
    rows.push(
      ['held by flashoptim, B/param', `${fixed(m.bytesPerParam)} (${fields})`],
      ['allocated by flashoptim, B/param', `${fixed(m.allocatedPerParam)} (with alignment, the group table, counters)`],
      [
        'held by this page, B/param',
        `${fixed(r.pageBytesPerParam)} (bf16 weights read back for the forward pass, bf16 gradients)`,
      ],
      [
        'end to end, B/param',
        `${fixed(m.allocatedPerParam + r.pageBytesPerParam)} (fp32 AdamW: 16 = f32 weights, gradients, m, v)`,
      ],
    );
  }
  $('stats').replaceChildren(
    ...rows.map(([k, v]) => {
      const tr = document.createElement('tr');
      tr.append(Object.assign(document.createElement('th'), { textContent: k }));
      tr.append(Object.assign(document.createElement('td'), { textContent: v }));
      return tr;
    }),
  );
  $('samples').textContent = r.samples.length ? `names it made up: ${r.samples.join(', ')}` : '';
  if ($('source').textContent !== r.source) $('source').textContent = r.source;
}
