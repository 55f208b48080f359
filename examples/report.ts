// What the training examples write under examples/out/: SVG charts rendered in Node with
// vega-lite → vega (no browser, no canvas), markdown tables, and mean ± std over seeds.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vega from 'vega';
import * as vl from 'vega-lite';

export const OUT = join(dirname(fileURLToPath(import.meta.url)), 'out');

export function writeOut(name: string, text: string): string {
  mkdirSync(OUT, { recursive: true });
  const path = join(OUT, name);
  writeFileSync(path, text);
  return path;
}

export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

export function markdownTable(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const line = (cells: readonly (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n') + '\n';
}

async function svg(spec: vl.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const out = await view.toSVG();
  view.finalize();
  return out;
}

export interface Point {
  readonly series: string;
  readonly x: number;
  readonly y: number;
}

/** Lines of y against x, one colour per series; `dash` series (e.g. references) are dashed. */
export function lineChart(
  points: readonly Point[],
  o: { title: string; x: string; y: string; logY?: boolean },
): Promise<string> {
  return svg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: o.title,
    width: 520,
    height: 300,
    background: 'white',
    data: { values: points as Point[] },
    mark: { type: 'line', strokeWidth: 1.5 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: o.x },
      y: { field: 'y', type: 'quantitative', title: o.y, scale: { zero: false, ...(o.logY ? { type: 'log' } : {}) } },
      color: { field: 'series', type: 'nominal', title: null, legend: { labelLimit: 320 } },
      // Same field and title as color: vega-lite merges them into one legend with dashed swatches.
      strokeDash: { field: 'series', type: 'nominal', title: null, legend: { labelLimit: 320 } },
    },
  } as vl.TopLevelSpec);
}

export interface Bar {
  readonly config: string;
  readonly field: string;
  readonly bytes: number;
}

/** Stacked bars: bytes per parameter of each configuration, split by stored field. */
export function bytesChart(bars: readonly Bar[], title: string): Promise<string> {
  return svg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 420,
    height: 200,
    background: 'white',
    data: { values: bars as Bar[] },
    mark: 'bar',
    encoding: {
      y: { field: 'config', type: 'nominal', title: null, sort: null, axis: { labelLimit: 300 } },
      x: { field: 'bytes', type: 'quantitative', title: 'bytes per parameter', stack: 'zero' },
      color: { field: 'field', type: 'nominal', title: 'field' },
      order: { field: 'field' },
      tooltip: [{ field: 'field' }, { field: 'bytes' }],
    },
  } as vl.TopLevelSpec);
}
