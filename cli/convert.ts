// `flashoptim convert <checkpoint> --fp32 <out.safetensors>`: the master weights (bf16 + correction
// reconstructed to f32, exactly what opt.exportFp32() returns) as float32 safetensors, the format
// PyTorch (safetensors.torch.load_file), Hugging Face tools and numpy readers load. The checkpoint
// is loaded whole first (loadOptimizer checks every byte), and the file is written by the
// library's own writer (saveFp32) through an atomic rename.

import { resolve } from 'node:path';
import { loadOptimizer, saveFp32 } from '../runtime/optimizer.ts';
import type { Io } from './args.ts';
import { UsageError, parse } from './args.ts';
import { readCheckpoint, writeOutput } from './files.ts';

export const convertHelp = `Usage: flashoptim convert <checkpoint> --fp32 <out.safetensors>

Write a checkpoint's master weights as float32 safetensors (one F32 tensor per parameter, under its
own name and shape), loadable by safetensors.torch.load_file, numpy and any safetensors reader.
Only the weights: optimizer states stay in the checkpoint.

  <checkpoint>            a flashoptim/2 checkpoint of a built-in optimizer
  --fp32 <file>           where to write (atomically: a temporary file renamed over it)
  -h, --help              this text`;

export async function convert(argv: readonly string[], io: Io): Promise<number> {
  const who = 'flashoptim convert';
  const a = parse(who, argv, { fp32: { type: 'string' } }, ['checkpoint']);
  if (!a) {
    io.out(convertHelp + '\n');
    return 0;
  }
  const from = a.positionals[0]!;
  const to = a.values['fp32'];
  if (typeof to !== 'string' || to === '') throw new UsageError(`${who}: --fp32 <out.safetensors> is required`);
  if (resolve(to) === resolve(from))
    throw new UsageError(`${who}: --fp32 ${JSON.stringify(to)} is the checkpoint itself; choose another file`);
  const opt = await loadOptimizer(await readCheckpoint(who, from));
  try {
    const bytes = await saveFp32(opt);
    await writeOutput(who, to, bytes);
    io.err(
      `${who}: wrote ${to}: ${opt.layout.tensors.length} F32 tensors, ${opt.layout.params} parameters, ${bytes.length} bytes\n`,
    );
  } finally {
    await opt.dispose();
  }
  return 0;
}
