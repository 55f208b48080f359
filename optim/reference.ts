// An independent float64 reference of the five optimizers (spec §3, torch's equations written
// out plainly, one loop each), for tests and for users checking their own definitions. Not used
// by the library itself.

export type RefName = 'sgd' | 'sgdw' | 'adam' | 'adamw' | 'lion';
export interface RefHyper {
  lr: number;
  betas?: readonly number[];
  eps?: number;
  weightDecay?: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
}

export class Reference {
  readonly p: Float64Array;
  private m: Float64Array;
  private v: Float64Array;
  private t = 0;
  constructor(
    readonly name: RefName,
    p: ArrayLike<number>,
    readonly h: RefHyper,
  ) {
    this.p = Float64Array.from(p);
    this.m = new Float64Array(this.p.length);
    this.v = new Float64Array(this.p.length);
  }

  step(g: ArrayLike<number>): void {
    const { p, m, v, h } = this;
    const wd = h.weightDecay ?? 0,
      lr = h.lr;
    const [b1 = 0.9, b2 = 0.999] = h.betas ?? [];
    this.t++;
    for (let i = 0; i < p.length; i++) {
      let gi = g[i]!;
      switch (this.name) {
        case 'adam':
        case 'adamw': {
          if (this.name === 'adam') gi += wd * p[i]!;
          else p[i] = p[i]! * (1 - lr * wd);
          m[i] = b1 * m[i]! + (1 - b1) * gi;
          v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
          const mh = m[i]! / (1 - b1 ** this.t),
            vh = v[i]! / (1 - b2 ** this.t);
          p[i] = p[i]! - (lr * mh) / (Math.sqrt(vh) + (h.eps ?? 1e-8));
          break;
        }
        case 'sgd':
        case 'sgdw': {
          const mu = h.momentum ?? 0,
            d = h.dampening ?? 0;
          if (this.name === 'sgd') gi += wd * p[i]!;
          else p[i] = p[i]! * (1 - lr * wd);
          if (mu === 0) {
            p[i] = p[i]! - lr * gi;
            break;
          }
          m[i] = mu * m[i]! + (1 - d) * gi;
          p[i] = p[i]! - lr * (h.nesterov ? gi + mu * m[i]! : m[i]!);
          break;
        }
        case 'lion': {
          p[i] = p[i]! * (1 - lr * wd);
          p[i] = p[i]! - lr * Math.sign(b1 * m[i]! + (1 - b1) * gi);
          m[i] = b2 * m[i]! + (1 - b2) * gi;
          break;
        }
      }
    }
  }
}

/** Cosine similarity and normalized MSE of two vectors (spec §5's agreement measures). */
export function agreement(a: ArrayLike<number>, b: ArrayLike<number>): { cos: number; nmse: number } {
  let ab = 0,
    aa = 0,
    bb = 0,
    d = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! ** 2;
    bb += b[i]! ** 2;
    d += (a[i]! - b[i]!) ** 2;
  }
  return { cos: ab / Math.sqrt(aa * bb), nmse: d / aa };
}
