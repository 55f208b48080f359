// The page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core; no browser
// download): it loads, trains a fixed number of steps, the loss falls, and it says where it ran.
// WebGPU runs on SwiftShader (Chromium's CPU Vulkan), on the largest limits WebGpuBackend.create()
// asks for and on a device asked for nothing (8 storage buffers, 128 MiB bindings); the WebAssembly
// backend through ?backend=wasm. The WebGPU run leaves a screenshot in examples/out/browser.png.

import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { servePage } from './serve.ts';
import type { Report } from './view.ts';

const SCREENSHOT = fileURLToPath(new URL('../out/browser.png', import.meta.url));

describe('examples/browser: FlashAdamW training in the page', () => {
  let server: Awaited<ReturnType<typeof servePage>>;
  let browser: Browser;
  const runs = new Map<string, Report>();

  beforeAll(async () => {
    server = await servePage(0);
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** Open the page with `query`, wait until it is done (or failed), return what it reports. */
  async function open(query: string, screenshot?: string): Promise<Report> {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await page.goto(server.url + query);
      await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset['state'] ?? ''), null, {
        timeout: 240_000,
      });
      const r = await page.evaluate(() => (window as unknown as { flashoptimDemo: Report }).flashoptimDemo);
      if (screenshot) {
        mkdirSync(new URL('../out/', import.meta.url), { recursive: true });
        await page.screenshot({ path: screenshot, fullPage: true });
      }
      expect(errors).toEqual([]);
      runs.set(query, r);
      return r;
    } finally {
      await page.close();
    }
  }

  /** The loss falls: validation from ln(vocabulary) ≈ 3.3 to below 2.6, the training loss with it. */
  function learned(r: Report): void {
    expect(r.state, r.error).toBe('done');
    expect(r.step).toBe(r.steps);
    expect(r.val[0]!.loss).toBeGreaterThan(3.2);
    expect(r.val.at(-1)!.loss).toBeLessThan(2.6);
    expect(r.train.at(-1)!.loss).toBeLessThan(r.train[0]!.loss - 0.3);
    expect(r.samples).toHaveLength(10);
    expect(r.stepsPerSecond).toBeGreaterThan(0);
    // flashoptim holds 7.125 B/param (a few more: tensors are padded to groups of 32); the page 4.
    expect(r.memory!.bytesPerParam).toBeGreaterThanOrEqual(7.125);
    expect(r.memory!.bytesPerParam).toBeLessThan(7.2);
    expect(r.pageBytesPerParam).toBe(4);
  }

  it('trains on WebGPU when navigator.gpu answers, and says so', async () => {
    const r = await open('?steps=300', SCREENSHOT);
    learned(r);
    expect(r.backend).toBe('webgpu');
    expect(r.why).toBe('navigator.gpu answered');
    expect(r.device).toMatch(/^google swiftshader; /);
    expect(r.source).toContain('@compute');
  }, 300_000);

  it('trains on WebGPU through a device asked for nothing: 8 storage buffers, 128 MiB bindings', async () => {
    const r = await open('?steps=300&device=default');
    learned(r);
    expect(r.device).toContain('8 storage buffers a stage, 128 MiB a binding');
  }, 300_000);

  it('?backend=wasm trains on the WebAssembly backend, along the same curve', async () => {
    const r = await open('?steps=300&backend=wasm');
    learned(r);
    expect([r.backend, r.device, r.why]).toEqual(['wasm', 'WebAssembly SIMD kernels', '?backend=wasm']);
    expect(r.source).toContain('(module');
    // Same seed, same batches: the backends agree (bit for bit here; the test asks for 0.1%).
    for (const q of ['?steps=300', '?steps=300&device=default']) {
      const gpu = runs.get(q) ?? (await open(q)); // run here too when this test runs alone
      expect(gpu.val.map((p) => p.step)).toEqual(r.val.map((p) => p.step));
      gpu.val.forEach((p, i) => expect(Math.abs(p.loss - r.val[i]!.loss)).toBeLessThan(1e-3 * r.val[i]!.loss));
    }
  }, 300_000);

  it('a bad query is one clear error on the page', async () => {
    const r = await open('?backend=cuda');
    expect(r.state).toBe('error');
    expect(r.error).toBe('?backend must be one of auto, webgpu, wasm, got "cuda"');
  }, 120_000);
});
