// `flashoptim/compiler`: the compiler for people who write rules, renderers or kernels by hand.
// An optimizer user needs none of this; the root entry has the DSL, optimizers and runtime.

export type { Expr, Type, NumType, Storage, Axis, Op, UnaryOp, BinaryOp } from './ir/ir.ts';
export { unaryOps, binaryOps } from './ir/ir.ts';
export { kernel, KernelError, fields, fieldsRead, storageBytes, arrayFor } from './ir/kernel.ts';
export type { Kernel, Output, Counter, FieldRef, FieldArray } from './ir/kernel.ts';
export { evaluate, apply } from './ir/semantics.ts';
export type { Env } from './ir/semantics.ts';
export { interpret } from './ir/interpret.ts';
export type { Launch as InterpretLaunch } from './ir/interpret.ts';
export { rewrite, rules, RewriteLimitError, MAX_NESTING } from './ir/rewrite.ts';
export type { Rule, RuleSet } from './ir/rewrite.ts';
export { fold, simplify, hoist } from './ir/passes.ts';
export { prepare, passes, uniformTable } from './ir/pipeline.ts';
export { splitPhases, hasReductions } from './ir/phases.ts';
export type { Phases, Reduction } from './ir/phases.ts';
export type { Prepared, Uniforms } from './ir/pipeline.ts';
export { compile, compileStats } from './render/js/compile.ts';
export type { CompiledKernel, RunArgs } from './render/js/compile.ts';
export { renderJs } from './render/js/render.ts';
export { renderWasm } from './render/wasm/render.ts';
export { renderWgsl } from './render/wgsl/render.ts';
export type { WgslOptions, WgslKernel } from './render/wgsl/render.ts';
export { renderGpujs } from './render/gpujs/render.ts';
