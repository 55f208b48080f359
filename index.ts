// flashoptim: what a user of optimizers needs, each area's exports listed here and nowhere else.
// The compiler itself (kernels, rules, passes, renderers, the f32 oracle) is `flashoptim/compiler`;
// the threaded backend `flashoptim/threads` (it needs node:worker_threads); TF.js `flashoptim/tfjs`.

// The DSL: scalar expressions optimizers and codecs are written in.
export * as dsl from './dsl/ops.ts';
export type { Expr, Like } from './dsl/ops.ts';

// Codecs: how a value is stored (bf16 + correction, companded 8-bit with group scales, your own).
export type { Codec, CodecField } from './dsl/codec.ts';
export { defineCodec } from './dsl/define.ts';
export type { CodecSpec, DefinedCodec } from './dsl/define.ts';
export { toBf16Bits, fromBf16Bits, toFp16Bits, fromFp16Bits, toBf16BitsUp } from './dsl/float.ts';
export { masterCodec, f32Codec } from './dsl/master.ts';
export type { MasterOptions } from './dsl/master.ts';
export { quantCodec, momentumCodec, varianceCodec, linearCodec } from './dsl/quant.ts';
export type { QuantOptions, ScaleStorage } from './dsl/quant.ts';
// The same codecs over host arrays (checkpoints, tests, interop).
export {
  toBf16,
  fromBf16,
  toFp16,
  fromFp16,
  computeErrorBits,
  reconstructFp32,
  quantize,
  dequantize,
} from './runtime/codecs.ts';
export type { QuantizeOptions, Quantized, EccOptions } from './runtime/codecs.ts';

// Optimizers: built-ins and your own.
export { adam, adamw, sgd, sgdw, lion, rmsprop, adagrad, adabelief, ademamix, lamb, lars } from './optim/index.ts';
export { defineOptimizer, momentum, variance, f32, custom, ema, decayFactor, HyperError } from './optim/define.ts';
export type { OptimizerDef, OptimizerSpec, StateSpec, StorageChoice, Hyper, UniformContext } from './optim/define.ts';
export type { Values, UniformOf } from './optim/fuse.ts';
export { fusedKernel } from './optim/storage.ts';
export type { StorageOptions } from './optim/storage.ts';
export { Reference, agreement } from './optim/reference.ts';

// Runtime: bind an optimizer to tensors, step, checkpoint.
export { createOptimizer, createOptimizerSync, loadOptimizer, saveFp32 } from './runtime/optimizer.ts';
export type { OptimizerOptions, ParamInput, GradInput } from './runtime/options.ts';
export type { DeviceGradient } from './runtime/on-device.ts';
export type { Session, Memory } from './runtime/session.ts';
export { NonFiniteError, NumericsError } from './runtime/numerics.ts';
export { saveCheckpointFile, loadCheckpointFile, CheckpointError } from './runtime/checkpoint.ts';

// Backends: where the kernel runs.
export type { Backend, DeviceBuffer, Program, Launch } from './runtime/backends/backend.ts';
export { BackendError } from './runtime/backends/backend.ts';
export { JsBackend } from './runtime/backends/js/js.ts';
export type { JsBackendOptions, Engine } from './runtime/backends/js/js.ts';
export { WebGpuBackend } from './runtime/backends/webgpu/webgpu.ts';
export type { WebGpuOptions } from './runtime/backends/webgpu/webgpu.ts';
export { findAdapter } from './runtime/backends/webgpu/device.ts';
export { GpujsBackend } from './runtime/backends/gpujs/gpujs.ts';
export { gpujsModes } from './runtime/backends/gpujs/device.ts';
export type { GpujsMode } from './runtime/backends/gpujs/device.ts';
