// CRC-32 (IEEE 802.3, the zlib one), table-driven, fed in pieces.

const table = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** The running register after `bytes`, from `c` (start from `CRC_START`). */
export function crcUpdate(c: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return c;
}

export const CRC_START = 0xffffffff;
export const crcFinal = (c: number): number => (c ^ 0xffffffff) >>> 0;

/** CRC-32 of one array. */
export const crc32 = (bytes: Uint8Array): number => crcFinal(crcUpdate(CRC_START, bytes));
