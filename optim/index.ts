export { adam, adamw } from './adam.ts';
export { sgd, sgdw } from './sgd.ts';
export { lion } from './lion.ts';
export { defineOptimizer, momentum, variance, f32, custom, ema, HyperError } from './define.ts';
export type { OptimizerDef, OptimizerSpec, StateSpec, StorageChoice, Hyper, UniformContext } from './define.ts';
