// safetensors, the checkpoint format every ML stack reads: an 8-byte little-endian header length,
// a JSON header ({ name: { dtype, shape, data_offsets }, __metadata__: { string: string } }), then
// the raw little-endian tensors.
//
// Integrity covers the whole file: the header starts `{"__metadata__":{"checksum":"XXXXXXXX",`
// and XXXXXXXX is the CRC-32 of every byte of the file with those eight characters read as '0'.
// A CRC-32 catches every error within 32 consecutive bits, so any single flipped byte, in the
// header or the data, and any truncation are refused. Decoding trusts nothing in the file: the
// header must be one JSON object whose entries have exactly dtype, shape and data_offsets, known
// dtypes, shapes of safe non-negative integers, and offsets that tile the data section exactly.
// Names live in a Map (a tensor may be called `__proto__`).

import { CRC_START, crcFinal, crcUpdate } from './crc32.ts';

export type Dtype = 'F32' | 'BF16' | 'F16' | 'I8' | 'U8' | 'I16' | 'U16' | 'I32' | 'U32';
export type TensorData = Float32Array | Uint16Array | Int16Array | Int8Array | Uint8Array | Int32Array | Uint32Array;
export interface Entry {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

export class CheckpointError extends Error {}

export const bytesOf: Readonly<Record<Dtype, number>> = {
  F32: 4,
  BF16: 2,
  F16: 2,
  I8: 1,
  U8: 1,
  I16: 2,
  U16: 2,
  I32: 4,
  U32: 4,
};
const arrayOf: Record<Dtype, new (b: ArrayBuffer) => TensorData> = {
  F32: Float32Array,
  BF16: Uint16Array,
  F16: Uint16Array,
  I8: Int8Array,
  U8: Uint8Array,
  I16: Int16Array,
  U16: Uint16Array,
  I32: Int32Array,
  U32: Uint32Array,
};

const PREFIX = '{"__metadata__":{"checksum":"';
/** Where the eight checksum characters sit: after the length and the fixed prefix. */
const AT = 8 + PREFIX.length;
const ZEROS = new TextEncoder().encode('00000000');

/** CRC-32 of the whole file with the checksum's eight characters read as '0'. */
function fileChecksum(bytes: Uint8Array): string {
  const c = crcUpdate(crcUpdate(crcUpdate(CRC_START, bytes.subarray(0, AT)), ZEROS), bytes.subarray(AT + 8));
  return crcFinal(c).toString(16).padStart(8, '0');
}

export function encode(
  tensors: ReadonlyMap<string, Entry>,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  let offset = 0;
  const entries: string[] = [];
  const parts: [number, TensorData][] = [];
  for (const [name, t] of tensors) {
    if (t.data.BYTES_PER_ELEMENT !== bytesOf[t.dtype])
      throw new CheckpointError(`safetensors: ${name} is ${t.dtype} but holds a ${t.data.constructor.name}`);
    const n = t.data.length * bytesOf[t.dtype];
    entries.push(
      `${JSON.stringify(name)}:${JSON.stringify({ dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] })}`,
    );
    parts.push([offset, t.data]);
    offset += n;
  }
  const meta = Object.entries(metadata)
    .map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`)
    .join('');
  const text = `${PREFIX}00000000"${meta}}${entries.map((e) => `,${e}`).join('')}}`;
  let json = new TextEncoder().encode(text);
  const pad = (8 - (json.length % 8)) % 8; // keep the data 8-byte aligned, as the reference writer does
  if (pad) json = new TextEncoder().encode(text + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  for (const [o, d] of parts) out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), 8 + json.length + o);
  out.set(new TextEncoder().encode(fileChecksum(out)), AT);
  return out;
}

export interface Decoded {
  readonly tensors: ReadonlyMap<string, Entry>;
  readonly metadata: ReadonlyMap<string, string>;
}

const isIndex = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const own = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** Parse and verify a whole file (checksum, header schema, offsets) without trusting anything in it. */
export function decode(bytes: Uint8Array): Decoded {
  if (!(bytes instanceof Uint8Array))
    throw new CheckpointError(`safetensors: expected a Uint8Array, got ${typeof bytes}`);
  if (bytes.length < AT + 10)
    throw new CheckpointError(`safetensors: ${bytes.length} bytes is too short for a checkpoint (truncated file?)`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8))
    throw new CheckpointError(
      `safetensors: the header says ${n} bytes but only ${bytes.length - 8} follow (truncated file?)`,
    );
  const head = bytes.subarray(8, 8 + Number(n));
  if (new TextDecoder().decode(head.subarray(0, PREFIX.length)) !== PREFIX)
    throw new CheckpointError(
      'safetensors: the header does not start with a flashoptim checksum (not a flashoptim/2 checkpoint, or a corrupted one)',
    );
  const stored = new TextDecoder().decode(bytes.subarray(AT, AT + 8));
  const computed = fileChecksum(bytes);
  if (stored !== computed)
    throw new CheckpointError(
      `safetensors: checksum mismatch (stored ${stored}, computed ${computed}): the file is corrupted or truncated`,
    );
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(head));
  } catch (e) {
    throw new CheckpointError(`safetensors: the header is not valid JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header))
    throw new CheckpointError('safetensors: the header is not a JSON object');
  const data = bytes.subarray(8 + Number(n));
  const metadata = new Map<string, string>();
  const tensors = new Map<string, Entry>();
  const spans: [number, number, string][] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!raw || typeof raw !== 'object' || Array.isArray(raw))
        throw new CheckpointError('safetensors: __metadata__ is not an object');
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') throw new CheckpointError(`safetensors: metadata ${k} is not a string`);
        metadata.set(k, v);
      }
      continue;
    }
    const h = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (
      !h ||
      typeof h !== 'object' ||
      Object.keys(h).length !== 3 ||
      !own(h, 'dtype') ||
      !own(h, 'shape') ||
      !own(h, 'data_offsets')
    )
      throw new CheckpointError(`safetensors: ${name} must have exactly dtype, shape and data_offsets`);
    const dtype = h.dtype as Dtype;
    if (typeof dtype !== 'string' || !own(bytesOf, dtype))
      throw new CheckpointError(`safetensors: ${name} has unsupported dtype ${String(h.dtype)}`);
    if (!Array.isArray(h.shape) || !h.shape.every(isIndex))
      throw new CheckpointError(`safetensors: ${name} has a malformed shape`);
    const offsets = h.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex))
      throw new CheckpointError(`safetensors: ${name} has malformed data_offsets`);
    const [b, e] = offsets as [number, number];
    const count = (h.shape as number[]).reduce((a, x) => a * x, 1);
    if (!(b <= e && e <= data.length) || e - b !== count * bytesOf[dtype])
      throw new CheckpointError(
        `safetensors: ${name} has offsets [${b}, ${e}] that do not hold ${count} ${dtype} values in ${data.length} bytes`,
      );
    spans.push([b, e, name]);
    // An owned copy (a Node Buffer's slice would be a view into its pool).
    const copy = new Uint8Array(e - b);
    copy.set(data.subarray(b, e));
    tensors.set(name, { dtype, shape: h.shape as number[], data: new arrayOf[dtype](copy.buffer) });
  }
  // The tensors must tile the data section: no overlap, no gap, nothing after the last one.
  spans.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let end = 0;
  for (const [b, e, name] of spans) {
    if (b !== end)
      throw new CheckpointError(`safetensors: ${name} starts at ${b}, expected ${end} (overlapping or gapped offsets)`);
    end = e;
  }
  if (end !== data.length)
    throw new CheckpointError(`safetensors: the tensors end at byte ${end} of a ${data.length}-byte data section`);
  return { tensors, metadata };
}
