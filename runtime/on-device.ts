// What a caller hands over on the device: a gradient, or a parameter whose buffer the optimizer
// updates where it is. Types only and their guards, so options, gradients and the session can all
// name them without importing each other.

/**
 * A gradient already on the device: `buffer` is the backend's native buffer (a GPUBuffer on the
 * optimizer's device, with COPY_SRC usage, and STORAGE usage when it is converted or bound),
 * holding the tensor's values from byte `offset` (a multiple of 4; 0 by default), as f32 or bf16.
 * It is read when the step runs: await step() before writing the buffer again.
 */
export interface DeviceGradient {
  readonly buffer: unknown;
  readonly offset?: number;
  readonly dtype: 'f32' | 'bf16';
}

export const isDeviceGradient = (g: unknown): g is DeviceGradient =>
  typeof g === 'object' && g !== null && !ArrayBuffer.isView(g) && 'buffer' in g && 'dtype' in g;

/**
 * A parameter that stays where the caller keeps it (with paramDtype 'f32'): `buffer` is the
 * backend's native buffer (a GPUBuffer on the optimizer's device, with STORAGE, COPY_SRC and
 * COPY_DST usage) holding the tensor's f32 values from byte `offset` (a multiple of 4). Those
 * values are the master weights: the optimizer starts from them and every step writes the new
 * ones into the same bytes, in its own submission, so the framework's next pass reads them with
 * no copy. The optimizer keeps no parameters of its own.
 */
export interface DeviceParam {
  readonly buffer: unknown;
  readonly offset?: number;
  readonly dtype: 'f32';
  readonly shape: readonly number[];
}

export const isDeviceParam = (p: unknown): p is DeviceParam =>
  typeof p === 'object' && p !== null && !ArrayBuffer.isView(p) && 'buffer' in p && 'shape' in p && !('data' in p);
