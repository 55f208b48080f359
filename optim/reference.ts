// An independent float64 reference of the built-in optimizers (spec §3; torch's equations, or the
// paper's where torch has none, written out plainly, one loop each, states as torch names and
// initializes them), for tests and for users checking their own definitions. Not used by the
// library itself.

export type RefName =
  'sgd' | 'sgdw' | 'adam' | 'adamw' | 'lion' | 'rmsprop' | 'adagrad' | 'adabelief' | 'ademamix' | 'lamb' | 'lars';
export interface RefHyper {
  lr: number;
  betas?: readonly number[];
  eps?: number;
  weightDecay?: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  /** RMSprop: the smoothing constant; AdEMAMix: the weight of the slow EMA. */
  alpha?: number;
  centered?: boolean;
  lrDecay?: number;
  initialAccumulatorValue?: number;
  alphaWarmup?: number;
  beta3Warmup?: number;
  /** LARS: the trust coefficient τ. */
  trustCoeff?: number;
}

/** ε when the hyperparameters leave it out: torch's, or the paper authors' package's. */
const defaultEps: Partial<Record<RefName, number>> = { adagrad: 1e-10, adabelief: 1e-16, lamb: 1e-6 };

/** ‖a‖/‖b‖ style ratio guarded as LAMB and LARS do: 1 when either squared norm is 0. */
const guarded = (a2: number, b2: number, r: number) => (a2 > 0 && b2 > 0 ? r : 1);
const sumSq = (x: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! ** 2;
  return s;
};

export class Reference {
  readonly p: Float64Array;
  /** State buffers by torch's names (exp_avg, square_avg, sum, …), zero unless torch says otherwise. */
  private readonly s = new Map<string, Float64Array>();
  private t = 0;
  /** LAMB and LARS: the trust ratio of the last step (the whole vector is one tensor). */
  trustRatio = NaN;
  constructor(
    readonly name: RefName,
    p: ArrayLike<number>,
    readonly h: RefHyper,
  ) {
    this.p = Float64Array.from(p);
    if (name === 'adagrad') this.state('sum').fill(h.initialAccumulatorValue ?? 0);
  }

  private state(key: string): Float64Array {
    let a = this.s.get(key);
    if (!a) this.s.set(key, (a = new Float64Array(this.p.length)));
    return a;
  }

  step(g: ArrayLike<number>): void {
    this.t++;
    const { p, h, t } = this;
    const lr = h.lr,
      wd = h.weightDecay ?? 0,
      eps = h.eps ?? defaultEps[this.name] ?? 1e-8;
    const [b1 = 0.9, b2 = 0.999, b3 = 0.9999] = h.betas ?? (this.name === 'lion' ? [0.9, 0.99] : []);
    const n = p.length;
    switch (this.name) {
      case 'adam':
      case 'adamw': {
        const m = this.state('exp_avg'),
          v = this.state('exp_avg_sq');
        for (let i = 0; i < n; i++) {
          let gi = g[i]!;
          if (this.name === 'adam') gi += wd * p[i]!;
          else p[i] = p[i]! * (1 - lr * wd);
          m[i] = b1 * m[i]! + (1 - b1) * gi;
          v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
          const mh = m[i]! / (1 - b1 ** t),
            vh = v[i]! / (1 - b2 ** t);
          p[i] = p[i]! - (lr * mh) / (Math.sqrt(vh) + eps);
        }
        break;
      }
      case 'sgd':
      case 'sgdw': {
        const mu = h.momentum ?? 0,
          d = h.dampening ?? 0,
          buf = this.state('momentum_buffer');
        for (let i = 0; i < n; i++) {
          let gi = g[i]!;
          if (this.name === 'sgd') gi += wd * p[i]!;
          else p[i] = p[i]! * (1 - lr * wd);
          if (mu === 0) {
            p[i] = p[i]! - lr * gi;
            continue;
          }
          buf[i] = mu * buf[i]! + (1 - d) * gi;
          p[i] = p[i]! - lr * (h.nesterov ? gi + mu * buf[i]! : buf[i]!);
        }
        break;
      }
      case 'lion': {
        const m = this.state('exp_avg');
        for (let i = 0; i < n; i++) {
          p[i] = p[i]! * (1 - lr * wd);
          p[i] = p[i]! - lr * Math.sign(b1 * m[i]! + (1 - b1) * g[i]!);
          m[i] = b2 * m[i]! + (1 - b2) * g[i]!;
        }
        break;
      }
      case 'rmsprop': {
        // torch.optim.RMSprop: L2 decay, ε outside the root, the buffer accumulates g/avg.
        const alpha = h.alpha ?? 0.99,
          mu = h.momentum ?? 0;
        const sq = this.state('square_avg'),
          ga = this.state('grad_avg'),
          buf = this.state('momentum_buffer');
        for (let i = 0; i < n; i++) {
          const gi = g[i]! + wd * p[i]!;
          sq[i] = alpha * sq[i]! + (1 - alpha) * gi * gi;
          let avg: number;
          if (h.centered) {
            ga[i] = alpha * ga[i]! + (1 - alpha) * gi;
            avg = Math.sqrt(sq[i]! - ga[i]! * ga[i]!) + eps;
          } else avg = Math.sqrt(sq[i]!) + eps;
          if (mu > 0) {
            buf[i] = mu * buf[i]! + gi / avg;
            p[i] = p[i]! - lr * buf[i]!;
          } else p[i] = p[i]! - (lr * gi) / avg;
        }
        break;
      }
      case 'adagrad': {
        // torch.optim.Adagrad: L2 decay, lr decayed by the step count, ε outside the root.
        const clr = lr / (1 + (t - 1) * (h.lrDecay ?? 0)),
          sum = this.state('sum');
        for (let i = 0; i < n; i++) {
          const gi = g[i]! + wd * p[i]!;
          sum[i] = sum[i]! + gi * gi;
          p[i] = p[i]! - (clr * gi) / (Math.sqrt(sum[i]!) + eps);
        }
        break;
      }
      case 'adabelief': {
        // adabelief-pytorch 0.2 with rectify=False: decoupled decay, ε added to s in place.
        const m = this.state('exp_avg'),
          s = this.state('exp_avg_var');
        for (let i = 0; i < n; i++) {
          p[i] = p[i]! * (1 - lr * wd);
          m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
          s[i] = b2 * s[i]! + (1 - b2) * (g[i]! - m[i]!) ** 2 + eps;
          const denom = Math.sqrt(s[i]!) / Math.sqrt(1 - b2 ** t) + eps;
          p[i] = p[i]! - ((lr / (1 - b1 ** t)) * m[i]!) / denom;
        }
        break;
      }
      case 'lamb': {
        // optim/lamb.ts: u = m̂/(√v̂ + ε) + λθ, θ −= η·(‖θ‖/‖u‖)·u, ratio 1 when a norm is 0.
        const m = this.state('exp_avg'),
          v = this.state('exp_avg_sq');
        const u = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
          v[i] = b2 * v[i]! + (1 - b2) * g[i]! ** 2;
          u[i] = m[i]! / (1 - b1 ** t) / (Math.sqrt(v[i]! / (1 - b2 ** t)) + eps) + wd * p[i]!;
        }
        const w2 = sumSq(p),
          u2 = sumSq(u);
        this.trustRatio = guarded(w2, u2, Math.sqrt(w2) / Math.sqrt(u2));
        for (let i = 0; i < n; i++) p[i] = p[i]! - lr * this.trustRatio * u[i]!;
        break;
      }
      case 'lars': {
        // optim/lars.ts: r = τ‖θ‖/(‖g‖ + λ‖θ‖ + ε), d = r(g + λθ), m = μm + (1−dampening)d.
        const mu = h.momentum ?? 0.9,
          d = h.dampening ?? 0,
          buf = this.state('momentum_buffer');
        const w2 = sumSq(p),
          g2 = sumSq(g);
        const wn = Math.sqrt(w2);
        this.trustRatio = guarded(w2, g2, ((h.trustCoeff ?? 1e-3) * wn) / (Math.sqrt(g2) + wd * wn + eps));
        for (let i = 0; i < n; i++) {
          const di = this.trustRatio * (g[i]! + wd * p[i]!);
          buf[i] = mu * buf[i]! + (1 - d) * di;
          p[i] = p[i]! - lr * (h.nesterov ? di + mu * buf[i]! : buf[i]!);
        }
        break;
      }
      case 'ademamix': {
        // apple/ml-ademamix: decay added to the update, warmups of α and β3 by step.
        const alpha = warm(t, h.alphaWarmup, (a) => a * (h.alpha ?? 2), h.alpha ?? 2);
        const beta3 = warm(t, h.beta3Warmup, (a) => fromHalfLife((1 - a) * halfLife(b1) + a * halfLife(b3)), b3);
        const fast = this.state('exp_avg_fast'),
          slow = this.state('exp_avg_slow'),
          v = this.state('exp_avg_sq');
        for (let i = 0; i < n; i++) {
          fast[i] = b1 * fast[i]! + (1 - b1) * g[i]!;
          slow[i] = beta3 * slow[i]! + (1 - beta3) * g[i]!;
          v[i] = b2 * v[i]! + (1 - b2) * g[i]! ** 2;
          const denom = Math.sqrt(v[i]!) / Math.sqrt(1 - b2 ** t) + eps;
          const update = (fast[i]! / (1 - b1 ** t) + alpha * slow[i]!) / denom + wd * p[i]!;
          p[i] = p[i]! - lr * update;
        }
        break;
      }
    }
  }
}

/** A warmup by step t: `during(t/T)` while t < T, else `after` (T absent or 0: no warmup). */
const warm = (t: number, T: number | undefined, during: (a: number) => number, after: number) =>
  T && t < T ? during(t / T) : after;
const halfLife = (beta: number) => Math.log(0.5) / Math.log(beta + 1e-8) - 1;
const fromHalfLife = (steps: number) => 0.5 ** (1 / (steps + 1));

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
