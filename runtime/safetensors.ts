// safetensors, the checkpoint format every ML stack reads: an 8-byte little-endian header length,
// a JSON header ({ name: { dtype, shape, data_offsets }, __metadata__: { string: string } }), then
// the raw little-endian tensors. A CRC-32 of the data section travels in the metadata so a
// corrupted file is caught before anything is loaded.

export type Dtype = 'F32' | 'BF16' | 'F16' | 'I8' | 'U8' | 'I16' | 'U16' | 'I32' | 'U32';
export type TensorData = Float32Array | Uint16Array | Int16Array | Int8Array | Uint8Array | Int32Array | Uint32Array;
export interface Entry {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

export class CheckpointError extends Error {}

const bytesOf: Record<Dtype, number> = { F32: 4, BF16: 2, F16: 2, I8: 1, U8: 1, I16: 2, U16: 2, I32: 4, U32: 4 };
const arrayOf: Record<Dtype, new (b: ArrayBuffer, o: number, n: number) => TensorData> = {
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

const table = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = table[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function encode(
  tensors: Readonly<Record<string, Entry>>,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  let offset = 0;
  const header: Record<string, unknown> = {};
  const parts: [number, TensorData][] = [];
  for (const [name, t] of Object.entries(tensors)) {
    const n = t.data.length * bytesOf[t.dtype];
    if (t.data.BYTES_PER_ELEMENT !== bytesOf[t.dtype])
      throw new CheckpointError(`safetensors: ${name} is ${t.dtype} but holds a ${t.data.constructor.name}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    parts.push([offset, t.data]);
    offset += n;
  }
  const data = new Uint8Array(offset);
  for (const [o, d] of parts) data.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), o);
  header['__metadata__'] = { ...metadata, crc32: crc32(data).toString(16) };
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8; // keep the data 8-byte aligned, as the reference writer does
  if (pad) json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

export interface Decoded {
  readonly tensors: Record<string, Entry>;
  readonly metadata: Record<string, string>;
}

/** Parse and verify (sizes, offsets, checksum) without trusting anything in the file. */
export function decode(bytes: Uint8Array): Decoded {
  if (!(bytes instanceof Uint8Array)) throw new CheckpointError('safetensors: expected a Uint8Array');
  if (bytes.length < 8)
    throw new CheckpointError(`safetensors: ${bytes.length} bytes is too short for a header (truncated file?)`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > bytes.length - 8)
    throw new CheckpointError(
      `safetensors: header says ${n} bytes but only ${bytes.length - 8} follow (truncated file?)`,
    );
  type Head = { dtype: Dtype; shape: number[]; data_offsets: [number, number] };
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new CheckpointError(`safetensors: the header is not valid JSON (${(e as Error).message})`);
  }
  const data = bytes.subarray(8 + n);
  const metadata = (header['__metadata__'] ?? {}) as Record<string, string>;
  if (metadata['crc32'] !== undefined && metadata['crc32'] !== crc32(data).toString(16))
    throw new CheckpointError(
      `safetensors: checksum mismatch (stored ${metadata['crc32']}, computed ${crc32(data).toString(16)}): the file is corrupted`,
    );
  const tensors: Record<string, Entry> = {};
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const h = raw as Head;
    if (!h || !Array.isArray(h.shape) || !Array.isArray(h.data_offsets))
      throw new CheckpointError(`safetensors: ${name} has a malformed header entry`);
    const width = bytesOf[h.dtype];
    if (!width) throw new CheckpointError(`safetensors: ${name} has unsupported dtype ${String(h.dtype)}`);
    const [b, e] = h.data_offsets;
    const count = h.shape.reduce((a, x) => a * x, 1);
    if (!(0 <= b && b <= e && e <= data.length) || e - b !== count * width)
      throw new CheckpointError(
        `safetensors: ${name} has offsets [${b}, ${e}] that do not fit ${count} ${h.dtype} values in ${data.length} bytes`,
      );
    const copy = data.slice(b, e); // aligned, owned copy
    tensors[name] = { dtype: h.dtype, shape: h.shape, data: new arrayOf[h.dtype](copy.buffer, 0, count) };
  }
  return { tensors, metadata };
}

/** Write atomically: a temporary file beside the target, then rename (Node only). */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const fs = await import('node:fs/promises');
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    await fs.writeFile(tmp, bytes);
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}
