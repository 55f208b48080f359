// The names the page trains on: every (CONTEXT characters → next character) pair of each name,
// for the page and for examples/names.ts alike ('.' pads the start and ends a name). The list itself is
// embedded in the bundle at build time (serve.ts: a slice of the @stdlib first-names datasets).

import { CONTEXT } from './model.ts';

export interface Split {
  readonly x: Int32Array;
  readonly y: Int32Array;
  readonly n: number;
}
export interface Dataset {
  readonly vocab: string;
  readonly train: Split;
  readonly val: Split;
}

/** Every 10th name (in the given order) is validation. */
export function namesDataset(names: readonly string[]): Dataset {
  const vocab = '.' + [...new Set(names.join(''))].sort().join('');
  const index = new Map([...vocab].map((c, i) => [c, i]));
  const build = (list: readonly string[]): Split => {
    const xs: number[] = [],
      ys: number[] = [];
    for (const name of list) {
      const ctx = new Array<number>(CONTEXT).fill(0);
      for (const ch of name + '.') {
        const c = index.get(ch)!;
        xs.push(...ctx);
        ys.push(c);
        ctx.shift();
        ctx.push(c);
      }
    }
    return { x: Int32Array.from(xs), y: Int32Array.from(ys), n: ys.length };
  };
  return {
    vocab,
    train: build(names.filter((_, i) => i % 10 !== 0)),
    val: build(names.filter((_, i) => i % 10 === 0)),
  };
}
