// Files the commands read and write: a checkpoint read whole with an error that names the path, and
// outputs written atomically through the library's writer (runtime/files.ts: a uniquely named
// temporary file beside the target, fsync, rename, fsync of the folder), so an interrupted convert
// never leaves a half-written file where a reader would load it.

import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../runtime/files.ts';
import { UsageError } from './args.ts';

/** The whole file at `path`; a missing or unreadable file is a one-line error naming it. */
export async function readCheckpoint(who: string, path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory' : (e as Error).message;
    throw new UsageError(`${who}: cannot read checkpoint ${JSON.stringify(path)}: ${why}`);
  }
}

/** Write `bytes` to `path` atomically; a failure names the path. */
export async function writeOutput(who: string, path: string, bytes: Uint8Array): Promise<void> {
  try {
    await writeFileAtomic(path, bytes);
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === 'ENOENT' ? 'its folder does not exist' : (e as Error).message;
    throw new Error(`${who}: cannot write ${JSON.stringify(path)}: ${why}`);
  }
}
