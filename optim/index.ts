export { adam, adamw } from './adam.ts';
export { sgd, sgdw } from './sgd.ts';
export { lion } from './lion.ts';
export { rmsprop } from './rmsprop.ts';
export { adagrad } from './adagrad.ts';
export { adabelief } from './adabelief.ts';
export { ademamix } from './ademamix.ts';
export { lamb } from './lamb.ts';
export { lars } from './lars.ts';
export { defineOptimizer, momentum, variance, f32, custom, ema, HyperError } from './define.ts';
export type {
  OptimizerDef,
  OptimizerSpec,
  StateSpec,
  StateCodecOptions,
  StorageChoice,
  Hyper,
  UniformContext,
} from './define.ts';
