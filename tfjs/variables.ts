/// <reference types="@webgpu/types" />
// A tf.Variable whose own GPUBuffer is the optimizer's master copy (runtime/on-device.ts,
// DeviceParam): each step's fused kernel writes the new weights into that buffer, in the step's own
// submission, and TF.js's next kernels read them there. Nothing is copied to or from the host.
//
// TF.js's own optimizers never write a buffer in place: `variable.assign(x)` moves the variable to
// x's dataId. Code written for that may hold other tensors on the variable's dataId (the tensor a
// variable was created from, `tf.clone(v)`, a reshape of it) and expect them to keep their values;
// and `assign` / `model.setWeights` moves the variable away from the buffer the optimizer writes.
// `prepare()` restores both before every step: aliases get a copy of the buffer (once), a moved
// variable has its new values copied into the optimizer's buffer and is pointed back at it. Both
// are GPU copies recorded into TF.js's command encoder, so `flush` submits them before our step.

import * as tf from '@tensorflow/tfjs-core';
import type { DataId } from '@tensorflow/tfjs-core';
import type { DeviceParam } from '../runtime/on-device.ts';
import type { TfWebGpu } from './webgpu.ts';
import { PARAM_USAGE, bufferOf, unref } from './webgpu.ts';

export class BoundVariable {
  /** The dataId whose buffer the optimizer writes; one reference to it is ours. */
  private id: DataId;
  readonly buffer: GPUBuffer;
  /** GPU copies made so far: for aliases of the variable, and for values assigned to it. */
  detached = 0;
  adopted = 0;

  constructor(
    private readonly b: TfWebGpu,
    readonly v: tf.Variable,
  ) {
    const buffer = bufferOf(b, v.dataId, PARAM_USAGE);
    if (!buffer)
      throw new TypeError(
        `tfjs adapter: variable ${v.name} is not held in a GPUBuffer with STORAGE | COPY_SRC | COPY_DST usage (a texture, or a buffer made elsewhere), so it cannot be updated in place`,
      );
    b.incRef(v.dataId);
    this.id = v.dataId;
    this.buffer = buffer;
  }

  get param(): DeviceParam {
    return { buffer: this.buffer, dtype: 'f32', shape: this.v.shape.slice() };
  }

  /** Before a step: the variable alone on the optimizer's buffer (see the top of this file). */
  prepare(): void {
    const moved = this.v.dataId !== this.id;
    // References to our dataId: ours, the variable's unless it moved, and any others are aliases.
    if (this.b.refCount(this.id) > (moved ? 1 : 2)) this.split();
    if (moved) this.adopt();
  }

  /** Record a copy into TF.js's command encoder (submitted by the next flush). */
  private copy(from: GPUBuffer, to: GPUBuffer): void {
    this.b.ensureCommandEncoderReady();
    this.b.endComputePassEncoder();
    this.b.commandEncoder!.copyBufferToBuffer(from, 0, to, 0, this.v.size * 4);
  }

  /** Point the variable at our dataId. */
  private pointVariable(): void {
    this.b.incRef(this.id); // the reference of the tensor made here
    const t = tf.engine().makeTensorFromDataId(this.id, this.v.shape, 'float32', this.b);
    this.v.assign(t);
    t.dispose();
  }

  /** Aliases of our dataId keep a copy of today's values; we (and the variable) move to a new dataId on our buffer. */
  private split(): void {
    const old = this.id;
    const copy = this.b.bufferManager.acquireBuffer(this.buffer.size, this.buffer.usage);
    this.copy(this.buffer, copy);
    this.b.tensorMap.get(old)!.resource = copy;
    const info = this.b.makeTensorInfo(this.v.shape, 'float32'); // its one reference is ours
    this.b.tensorMap.get(info.dataId)!.resource = this.buffer;
    this.id = info.dataId;
    if (this.v.dataId === old) this.pointVariable();
    unref(this.b, old);
    this.detached++;
  }

  /** The variable was assigned (it moved to another dataId): its new values into our buffer, and back onto it. */
  private adopt(): void {
    const from = bufferOf(this.b, this.v.dataId);
    if (!from)
      throw new TypeError(
        `tfjs adapter: the value assigned to variable ${this.v.name} is not in a GPUBuffer, so it cannot be copied into the optimizer's buffer`,
      );
    if (from !== this.buffer) this.copy(from, this.buffer);
    this.dropCpuCopy();
    this.pointVariable();
    this.adopted++;
  }

  /**
   * Forget the CPU copy TF.js cached when the variable was last read: the buffer has changed
   * since, and TF.js would return that copy from every later read.
   */
  dropCpuCopy(): void {
    const d = this.b.tensorMap.get(this.id);
    if (d?.resource) d.values = null;
  }

  /** Let TF.js free the buffer once the variable is gone too. */
  release(): void {
    unref(this.b, this.id);
  }
}
