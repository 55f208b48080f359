// Options of createOptimizer: the storage (optim/storage.ts) and how the session behaves, resolved
// once with every default filled in and every value checked.

import type { Hyper } from '../optim/define.ts';
import type { Storage, StorageOptions } from '../optim/storage.ts';
import { shown } from '../optim/define.ts';
import { clipOption, flag, knownKeys, oneOf, resolveStorage, STORAGE_KEYS } from '../optim/storage.ts';
import type { Backend } from './backends/backend.ts';
import type { DeviceGradient, DeviceParam } from './on-device.ts';

export interface OptimizerOptions<H extends Hyper = Hyper> extends StorageOptions {
  /** Parameter groups: per-group hyperparameters (e.g. no weight decay on biases and norms). */
  readonly groups?: readonly { readonly params: readonly string[]; readonly hyper: Partial<H> }[];
  /** A schedule: hyperparameters as a function of the step (applied before each step). */
  readonly schedule?: (step: number) => Partial<H>;
  /** 'skip' (default): count non-finite gradient elements and leave them out; 'error': also throw. */
  readonly onNonFinite?: 'skip' | 'error';
  /** Throw NumericsError when lr is too small to move the largest weights (spec §4.4, 0.49 ULP). */
  readonly checkNumerics?: boolean;
  /**
   * Gradient release: the arena holds no gradient. stepTensor() updates a tensor as soon as its
   * gradient exists; step() reads every gradient where it is (a GPUBuffer is bound, not copied).
   */
  readonly gradientRelease?: boolean;
  /**
   * Clip the gradients by their global norm before the update (torch's clip_grad_norm_, ε 1e−6):
   * a reduction pass before the step; `gradNorm()` reads the pre-clip norm of the last step.
   */
  readonly clipGradNorm?: number;
  readonly backend?: 'js' | Backend;
}

/** A host array (f32, or bf16 bits), with its shape or without, or (paramDtype 'f32') a buffer on the device updated in place. */
export type ParamInput =
  | Float32Array
  | Uint16Array
  | { readonly data: Float32Array | Uint16Array; readonly shape: readonly number[] }
  | DeviceParam;
/** A host array (f32, or bf16 bits), or a buffer already on the device (runtime/gradients.ts). */
export type GradInput = Float32Array | Uint16Array | DeviceGradient;

/** Every option resolved: the storage, and how the session behaves. */
export interface Resolved extends Storage {
  readonly onNonFinite: 'skip' | 'error';
  readonly checkNumerics: boolean;
  readonly gradientRelease: boolean;
  readonly clipGradNorm: number | undefined;
}

const KEYS = [
  ...STORAGE_KEYS,
  'groups',
  'schedule',
  'onNonFinite',
  'checkNumerics',
  'gradientRelease',
  'clipGradNorm',
  'backend',
];
const W = 'createOptimizer';

export function resolveOptions(o: OptimizerOptions<Hyper>): Resolved {
  knownKeys(W, o, KEYS);
  if (o.schedule !== undefined && typeof o.schedule !== 'function')
    throw new TypeError(`${W}: schedule must be a function of the step, got ${shown(o.schedule)}`);
  const b = o.backend;
  if (
    b !== undefined &&
    b !== 'js' &&
    !(
      typeof b === 'object' &&
      b !== null &&
      typeof (b as Backend).alloc === 'function' &&
      typeof (b as Backend).run === 'function'
    )
  )
    throw new TypeError(
      `${W}: backend must be 'js' or a backend object (new JsBackend(), await WebGpuBackend.create(), …), got ${shown(b)}`,
    );
  return {
    ...resolveStorage(o),
    onNonFinite: oneOf(W, 'onNonFinite', o.onNonFinite ?? 'skip', ['skip', 'error'] as const),
    checkNumerics: flag(W, 'checkNumerics', o.checkNumerics, false),
    gradientRelease: flag(W, 'gradientRelease', o.gradientRelease, false),
    clipGradNorm: clipOption(W, o.clipGradNorm),
  };
}
