// flashoptim: the public API. Each area's exports are listed here, nowhere else.

// The DSL: scalar expressions optimizers and codecs are written in.
export * as dsl from './dsl/ops.ts';
export type { Codec, CodecField } from './dsl/codec.ts';

// The compiler: kernels, passes and renderers.
export { kernel, KernelError } from './compiler/ir/kernel.ts';
export type { Kernel, Output, Counter } from './compiler/ir/kernel.ts';
export { compile, compileStats } from './compiler/render/js/compile.ts';
export type { CompiledKernel, RunArgs, FieldArray } from './compiler/render/js/compile.ts';
export { rewrite, rules, RewriteLimitError, MAX_NESTING } from './compiler/ir/rewrite.ts';
export { prepare } from './compiler/ir/pipeline.ts';
export type { Prepared } from './compiler/ir/pipeline.ts';
export type { Rule, RuleSet } from './compiler/ir/rewrite.ts';
export type { Expr, Type, Storage } from './compiler/ir/ir.ts';

// Backends.
export type { Backend, DeviceBuffer, Program, Launch } from './runtime/backends/backend.ts';
export { JsBackend } from './runtime/backends/js/js.ts';
// The threaded JS backend needs node:worker_threads: import it from 'flashoptim/threads'.
export { WebGpuBackend } from './runtime/backends/webgpu/webgpu.ts';
export type { WebGpuOptions } from './runtime/backends/webgpu/webgpu.ts';
export { findAdapter } from './runtime/backends/webgpu/device.ts';
export { GpujsBackend, gpujsModes } from './runtime/backends/gpujs/gpujs.ts';
export type { GpujsMode } from './runtime/backends/gpujs/gpujs.ts';

// Codecs: how a value is stored (bf16 + correction, companded 8-bit with group scales, …).
export { toBf16Bits, fromBf16Bits, toFp16Bits, fromFp16Bits, toBf16BitsUp } from './dsl/float.ts';
export { masterCodec, f32Codec } from './dsl/master.ts';
export type { MasterOptions } from './dsl/master.ts';
export { quantCodec, momentumCodec, varianceCodec, linearCodec } from './dsl/quant.ts';
export type { QuantOptions, ScaleStorage } from './dsl/quant.ts';
export { defineCodec } from './dsl/define.ts';
export { toBf16, fromBf16, toFp16, fromFp16, computeErrorBits, reconstructFp32, quantize, dequantize } from './runtime/codecs.ts';
export type { QuantizeOptions, Quantized, EccOptions } from './runtime/codecs.ts';

// Optimizers: built-ins and your own.
export { adam, adamw, sgd, sgdw, lion, defineOptimizer, momentum, variance, f32, custom, ema, HyperError } from './optim/index.ts';
export type { OptimizerDef, OptimizerSpec, StateSpec, StorageChoice, Hyper, UniformContext } from './optim/index.ts';
export { Reference, agreement } from './optim/reference.ts';
export { fuse } from './optim/fuse.ts';
export type { FuseSpec, Values, UniformOf } from './optim/fuse.ts';

// Runtime: bind an optimizer to tensors, step, checkpoint.
export { createOptimizer, fusedKernel } from './runtime/optimizer.ts';
export type { OptimizerOptions, ParamInput, GradInput } from './runtime/optimizer.ts';
export type { Session, Memory } from './runtime/session.ts';
export { NonFiniteError, NumericsError } from './runtime/numerics.ts';
export { loadOptimizer, saveCheckpointFile, loadCheckpointFile, saveFp32, CheckpointError } from './runtime/checkpoint.ts';
