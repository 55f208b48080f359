// tfjs-core's package entry registers no gradient functions (the @tensorflow/tfjs bundle does),
// so with only tfjs-core + tfjs-backend-cpu, minimize() fails with "gradient function not found".
// Importing this module registers them once. Registries are global (shared by every copy of
// tfjs-core in the process), so registering from tfjs-core's ESM build serves the CJS one too.
// Under tsx, require() resolves that build's extensionless imports (file before directory);
// under vite/vitest, import() does.

import * as tf from '@tensorflow/tfjs-core';
import { importNode } from '../runtime/backends/peers.ts';

const SPEC = '@tensorflow/tfjs-core/dist/register_all_gradients';
const isNode = typeof process !== 'undefined' && !!process.versions?.node;

export async function registerGradients(): Promise<void> {
  if (tf.getGradient('RealDiv')) return;
  try {
    if (!isNode) throw new Error('no require() outside Node');
    const { createRequire } = await importNode<typeof import('node:module')>('node:module');
    createRequire(import.meta.url)(`${SPEC}.js`);
  } catch {
    await import(/* @vite-ignore */ SPEC);
  }
  if (!tf.getGradient('RealDiv'))
    throw new Error('tfjs: could not register the gradient functions of @tensorflow/tfjs-core');
}

await registerGradients();
