/// <reference types="@webgpu/types" />
// Error scopes around GPU calls, two ways. `awaited` waits for what the scopes caught: for calls
// that wait for the device anyway (compile, read, a launch whose counters come back). `deferred`
// does not wait, so a step costs no round trip: what its scopes catch is kept, named after the
// call, and thrown by the backend's next call (`raise`), at the latest.

import { BackendError } from '../backend.ts';

const KINDS = ['validation', 'out-of-memory', 'internal'] as const;

export class Scopes {
  private caught: BackendError | null = null;

  constructor(
    private readonly device: GPUDevice,
    private readonly wait: <T>(p: Promise<T>) => Promise<T>,
  ) {}

  private push(): void {
    for (const k of KINDS) this.device.pushErrorScope(k);
  }

  private pop(): Promise<(GPUError | null)[]> {
    return Promise.all(KINDS.map(() => this.device.popErrorScope()));
  }

  /** Run `f` inside the scopes and throw what they caught. */
  async awaited<T>(what: string, f: () => T): Promise<T> {
    this.push();
    let value: T;
    try {
      value = f();
    } finally {
      const e = (await this.wait(this.pop())).find((x) => x !== null);
      if (e) throw new BackendError(`webgpu.${what}: ${e.message}`);
    }
    return value;
  }

  /** Run `f` inside the scopes without waiting; what they catch is thrown by the next `raise`. */
  deferred(what: string, f: () => void): void {
    this.push();
    try {
      f();
    } finally {
      this.pop().then(
        (errs) => {
          const e = errs.find((x) => x !== null);
          if (e && !this.caught)
            this.caught = new BackendError(`webgpu.${what}: ${e.message} (reported by the device after the call)`);
        },
        () => {}, // a lost device: the backend's own loss handling reports it
      );
    }
  }

  /** Throw, once, the first error a deferred call's scopes caught. */
  raise(): void {
    const e = this.caught;
    if (e) {
      this.caught = null;
      throw e;
    }
  }
}
