// Checkpoint fuzzing: every byte of a small checkpoint flipped (two masks) and every truncation
// length. No corrupted file may load with content different from what was saved; every refusal is
// a CheckpointError; after each refusal the optimizer is byte-identical to before and still steps.
// Then files an attacker (or a buggy writer) crafts with a VALID checksum: offsets out of bounds,
// overlapping or gapped, wrong dtypes, prototype keys, missing or extra keys, malformed metadata.

import { describe, expect, it } from 'vitest';
import { adamw, sgd } from '../optim/index.ts';
import { uniformF32 } from '../props/prng.ts';
import { CheckpointError } from './checkpoint.ts';
import { CRC_START, crcFinal, crcUpdate } from './crc32.ts';
import { createOptimizer, loadOptimizer } from './optimizer.ts';
import type { Entry } from './safetensors.ts';
import { decode, encode } from './safetensors.ts';

const params = () => ({ w: { data: uniformF32(40, 1), shape: [5, 8] }, b: uniformF32(7, 2) });
const grads = (s: number) => ({ w: uniformF32(40, 10 + s, 0.1), b: uniformF32(7, 20 + s, 0.1) });

async function trained() {
  const opt = await createOptimizer(adamw({ lr: 1e-2 }), params(), {
    groups: [{ params: ['b'], hyper: { weightDecay: 0 } }],
  });
  for (let s = 0; s < 3; s++) await opt.step(grads(s));
  return opt;
}

describe('checkpoint fuzzing', () => {
  it('every flipped byte (masks 0x01 and 0xff) and every truncation is refused with a CheckpointError, and the target is unchanged', async () => {
    const saved = await (await trained()).save();
    const target = await createOptimizer(adamw({ lr: 1e-2 }), params(), {
      groups: [{ params: ['b'], hyper: { weightDecay: 0 } }],
    });
    await target.step(grads(7));
    const before = await target.save();
    const variants: Uint8Array[] = [];
    for (const mask of [0x01, 0xff])
      for (let i = 0; i < saved.length; i++) {
        const v = saved.slice();
        v[i]! ^= mask;
        variants.push(v);
      }
    for (let n = 0; n < saved.length; n++) variants.push(saved.slice(0, n));
    let refused = 0;
    for (const v of variants) {
      const err = await target.load(v).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, `a corrupted file of ${v.length} bytes loaded`).toBeInstanceOf(CheckpointError);
      refused++;
    }
    expect(refused).toBe(3 * saved.length);
    expect(await target.save()).toEqual(before);
    await target.step(grads(8)); // still steps
    await target.load(saved); // and the intact file still loads
    expect(await target.save()).toEqual(saved);
    console.log(`checkpoint of ${saved.length} bytes: ${refused} corrupted variants, all refused`);
  });
});

/** The saved file re-encoded with edits: a valid checksum over invalid content. */
function crafted(saved: Uint8Array, edit: (t: Map<string, Entry>, m: Map<string, string>) => void): Uint8Array {
  const d = decode(saved);
  const t = new Map(d.tensors),
    m = new Map(d.metadata);
  m.delete('checksum');
  edit(t, m);
  return encode(t, Object.fromEntries(m));
}

/** A header written by hand, with its checksum made right. */
function rawHeader(saved: Uint8Array, change: (header: Record<string, unknown>) => void): Uint8Array {
  const n = Number(new DataView(saved.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(saved.subarray(8, 8 + n))) as Record<string, unknown>;
  const data = saved.subarray(8 + n);
  change(header);
  const m = header['__metadata__'] as Record<string, string>;
  delete header['__metadata__'];
  delete m['checksum'];
  // Reuse the encoder for the checksum: re-encode an empty file with this metadata, then splice.
  const text = `{"__metadata__":${JSON.stringify({ checksum: '00000000', ...m })},${JSON.stringify(header).slice(1)}`;
  const json = new TextEncoder().encode(text + ' '.repeat((8 - (text.length % 8)) % 8));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return fixChecksum(out);
}

function fixChecksum(b: Uint8Array): Uint8Array {
  const at = 8 + '{"__metadata__":{"checksum":"'.length;
  b.set(new TextEncoder().encode('00000000'), at);
  const c = crcFinal(
    crcUpdate(
      crcUpdate(crcUpdate(CRC_START, b.subarray(0, at)), new TextEncoder().encode('00000000')),
      b.subarray(at + 8),
    ),
  );
  b.set(new TextEncoder().encode(c.toString(16).padStart(8, '0')), at);
  return b;
}

describe('crafted checkpoints with a valid checksum are refused by the schema', () => {
  const cases: [string, (s: Uint8Array) => Uint8Array, RegExp][] = [
    [
      'steps −5',
      (s) => crafted(s, (_, m) => m.set('tensors', m.get('tensors')!.replace('"steps":3', '"steps":-5'))),
      /steps must be an integer/,
    ],
    [
      'steps 2.5',
      (s) => crafted(s, (_, m) => m.set('tensors', m.get('tensors')!.replace('"steps":3', '"steps":2.5'))),
      /steps must be an integer/,
    ],
    [
      'steps 1e10',
      (s) => crafted(s, (_, m) => m.set('tensors', m.get('tensors')!.replace('"steps":3', '"steps":1e10'))),
      /steps must be an integer/,
    ],
    [
      'steps a string',
      (s) => crafted(s, (_, m) => m.set('tensors', m.get('tensors')!.replace('"steps":3', '"steps":"3"'))),
      /steps must be an integer/,
    ],
    ['stepCount NaN', (s) => crafted(s, (_, m) => m.set('stepCount', 'NaN')), /stepCount/],
    [
      'lr a string',
      (s) => crafted(s, (_, m) => m.set('groups', m.get('groups')!.replace('"lr":0.01', '"lr":"0.01"'))),
      /hyper\.lr is not a finite number/,
    ],
    [
      'lr 1e400 (Infinity)',
      (s) => crafted(s, (_, m) => m.set('groups', m.get('groups')!.replace('"lr":0.01', '"lr":1e400'))),
      /hyper\.lr is not a finite number/,
    ],
    [
      'lr changed to 1.01',
      (s) => crafted(s, (_, m) => m.set('groups', m.get('groups')!.replace('"lr":0.01', '"lr":1.01'))),
      /^$/,
    ],
    ['a missing metadata key', (s) => crafted(s, (_, m) => m.delete('groups')), /metadata groups is missing/],
    [
      'format 1',
      (s) => crafted(s, (_, m) => m.set('format', 'flashoptim/1')),
      /predates header checksums .* saveFp32 .* importFp32/,
    ],
    [
      'no checksum at all (a plain safetensors file)',
      () => {
        const text = '{"__metadata__":{"format":"flashoptim/2"}}';
        const h = new TextEncoder().encode(text + ' '.repeat((8 - (text.length % 8)) % 8));
        const out = new Uint8Array(8 + h.length);
        new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
        out.set(h, 8);
        return out;
      },
      /does not start with a flashoptim checksum/,
    ],
    [
      'an F16↔BF16 swap',
      (s) => crafted(s, (t) => t.set('w', { ...t.get('w')!, dtype: 'F16' })),
      /w is F16 \[5,8\], expected BF16 \[5,8\]/,
    ],
    [
      'a U8↔I8 swap',
      (s) =>
        crafted(s, (t) =>
          t.set('w::v', { ...t.get('w::v')!, dtype: 'I8', data: new Int8Array(t.get('w::v')!.data.buffer) }),
        ),
      /w::v is I8/,
    ],
    ['a missing tensor', (s) => crafted(s, (t) => t.delete('b::m')), /tensor b::m is missing/],
    ['an extra tensor', (s) => crafted(s, (t) => t.set('x', t.get('b')!)), /tensor x is not a field of this optimizer/],
    [
      'a reshaped tensor with the same count',
      (s) =>
        crafted(s, (t, m) => {
          t.set('w', { ...t.get('w')!, shape: [8, 5] });
          m.set('tensors', m.get('tensors')!.replace('[5,8]', '[8,5]'));
        }),
      /names and shapes/,
    ],
    [
      'offsets past the end',
      (s) =>
        rawHeader(s, (h) => {
          (h['b'] as { data_offsets: number[] }).data_offsets = [0, 1e9];
        }),
      /offsets/,
    ],
    [
      'negative offsets',
      (s) =>
        rawHeader(s, (h) => {
          (h['b'] as { data_offsets: number[] }).data_offsets = [-14, 0];
        }),
      /malformed data_offsets/,
    ],
    [
      'overlapping offsets',
      (s) =>
        rawHeader(s, (h) => {
          const w = h['w'] as { data_offsets: number[] },
            b = h['b'] as { data_offsets: number[] };
          b.data_offsets = [w.data_offsets[0]!, w.data_offsets[0]! + 14];
        }),
      /overlapping or gapped/,
    ],
    [
      'a __proto__ tensor',
      (s) =>
        rawHeader(s, (h) => {
          Object.defineProperty(h, '__proto__', { value: h['b'], enumerable: true });
        }),
      /__proto__/,
    ],
    [
      'an entry with an extra key',
      (s) =>
        rawHeader(s, (h) => {
          (h['b'] as Record<string, unknown>)['extra'] = 1;
        }),
      /exactly dtype, shape and data_offsets/,
    ],
    [
      'an unknown dtype',
      (s) =>
        rawHeader(s, (h) => {
          (h['b'] as Record<string, unknown>)['dtype'] = 'F64';
        }),
      /unsupported dtype F64/,
    ],
  ];
  it.each(cases)('%s', async (what, make, message) => {
    const saved = await (await trained()).save();
    const target = await trained();
    const before = await target.save();
    const bad = make(saved);
    const err = await target.load(bad).then(
      () => null,
      (e: unknown) => e,
    );
    if (what === 'lr changed to 1.01') {
      // A changed lr with a valid checksum is a different checkpoint, honestly written: it loads as written.
      expect(err).toBeNull();
      expect(target.hyperOf('w').lr).toBe(1.01);
      return;
    }
    expect(err, what).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(message);
    expect(await target.save()).toEqual(before);
    await expect(loadOptimizer(bad)).rejects.toThrow(CheckpointError);
  });

  it('a checkpoint of a different optimizer or structure is refused, naming the mismatch', async () => {
    const mom = await createOptimizer(sgd({ lr: 0.1, momentum: 0.9 }), { w: uniformF32(32, 1) });
    const plain = await createOptimizer(sgd({ lr: 0.1 }), { w: uniformF32(32, 1) });
    const nesterov = await createOptimizer(sgd({ lr: 0.1, momentum: 0.9, nesterov: true }), { w: uniformF32(32, 1) });
    await expect(plain.load(await mom.save())).rejects.toThrow(
      /kernel's structure is "sgd;nesterov=false;decoupleLr=false;m" in the file but "sgd;nesterov=false;decoupleLr=false" here/,
    );
    await expect(nesterov.load(await mom.save())).rejects.toThrow(/structure/);
    await expect((await trained()).load(await mom.save())).rejects.toThrow(
      /the optimizer is "sgd" in the file but "adamw" here/,
    );
  });
});
