// flashoptim: the public API. Each area's exports are listed here, nowhere else.

// The DSL: scalar expressions optimizers and codecs are written in.
export * as dsl from './dsl/ops.ts';
export type { Codec, CodecField } from './dsl/codec.ts';

// The compiler: kernels, passes and renderers.
export { kernel, KernelError } from './compiler/kernel.ts';
export type { Kernel, Output, Counter } from './compiler/kernel.ts';
export { compile, compileStats } from './compiler/compile.ts';
export type { CompiledKernel, RunArgs, FieldArray } from './compiler/compile.ts';
export { rewrite, rules } from './compiler/rewrite.ts';
export type { Rule, RuleSet } from './compiler/rewrite.ts';
export type { Expr, Type, Storage } from './compiler/ir.ts';

// Backends.
export type { Backend, DeviceBuffer, Program, Launch } from './runtime/backend.ts';
export { JsBackend } from './runtime/js.ts';
