// Checkpoint files (Node only; node:fs is imported on first use, out of bundlers' sight, so browser
// bundles never need it).
// A write is atomic and durable: the bytes go to a temporary file with a random name beside the
// target (two concurrent saves to one path never share one), the file is fsynced, renamed over the
// target, and the directory is fsynced so the rename itself survives a crash. Whatever the order
// of concurrent saves, the path ends up holding one complete checkpoint.

import { importNode } from './backends/peers.ts';

export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const fs = await importNode<typeof import('node:fs/promises')>('node:fs/promises');
  const { dirname } = await importNode<typeof import('node:path')>('node:path');
  const { randomUUID } = await importNode<typeof import('node:crypto')>('node:crypto');
  const tmp = `${path}.${randomUUID()}.tmp`;
  try {
    const f = await fs.open(tmp, 'wx');
    try {
      await f.writeFile(bytes);
      await f.sync();
    } finally {
      await f.close();
    }
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  // The directory entry: without this a crash right after rename may lose the new name.
  const dir = await fs.open(dirname(path), 'r').catch(() => null);
  if (dir)
    try {
      await dir.sync();
    } catch {
      // Some file systems refuse fsync on a directory; the rename is still atomic there.
    } finally {
      await dir.close();
    }
}

export async function readFileBytes(path: string): Promise<Uint8Array> {
  const fs = await importNode<typeof import('node:fs/promises')>('node:fs/promises');
  return new Uint8Array(await fs.readFile(path));
}
