// The project's one pseudo-random generator: mulberry32, seeded, so a printed seed reproduces a
// whole data set (property tests, the conformance suite, benchmarks and examples all use it).

/** A deterministic stream of uniforms in [0, 1) from a 32-bit seed (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n f32 values uniform in [−scale/2, scale/2) from `seed`. */
export function uniformF32(n: number, seed: number, scale = 1): Float32Array {
  const r = prng(seed);
  return Float32Array.from({ length: n }, () => (r() - 0.5) * scale);
}
