// What flashoptim loads only when a feature asks for it: the optional peer dependencies (one per
// backend or adapter: installing flashoptim for its JS backend pulls none of them) and Node's
// built-in modules. Each is imported through a specifier held in a variable, so a bundler neither
// follows it nor fails on it (the root entry bundles for the browser with none of them installed),
// while Node resolves it from this package's folder as usual.

import { BackendError } from './backend.ts';

/** The optional peers, at the versions package.json pins (test/dependencies.test.ts compares). */
export const peers = {
  webgpu: '0.6.2',
  'gpu.js': '2.24.1',
  '@tensorflow/tfjs-core': '4.22.0',
  '@tensorflow/tfjs-backend-webgpu': '4.22.0',
  'fast-check': '4.10.2',
} as const;
export type Peer = keyof typeof peers;

/** `who` needs a peer that is not installed; the message is the command that installs it. */
export class MissingPeerError extends BackendError {
  constructor(
    readonly peer: Peer,
    who: string,
    options?: ErrorOptions,
  ) {
    super(`${who}: the '${peer}' package is not installed; run npm install ${peer}@${peers[peer]}`, options);
  }
}

/** Did this import fail because `name` itself cannot be found (not one of its own imports)? */
function notFound(e: unknown, name: string): boolean {
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown } | null)?.code;
  const named = message.includes(`'${name}'`) || message.includes(`"${name}"`);
  const missing =
    code === 'ERR_MODULE_NOT_FOUND' ||
    code === 'MODULE_NOT_FOUND' ||
    /Cannot find (package|module)|Failed to (resolve|load)/.test(message);
  return named && missing;
}

/** Import an optional peer; a MissingPeerError naming `who` and the install command if it is absent. */
export async function importPeer<T>(peer: Peer, who: string): Promise<T> {
  const specifier: string = peer;
  try {
    return (await import(/* @vite-ignore */ specifier)) as T;
  } catch (e) {
    if (notFound(e, peer)) throw new MissingPeerError(peer, who, { cause: e });
    throw e;
  }
}

/** A Node built-in module, loaded on first use so that browser bundles never meet it. */
export function importNode<T>(name: `node:${string}`): Promise<T> {
  const specifier: string = name;
  return import(/* @vite-ignore */ specifier) as Promise<T>;
}
