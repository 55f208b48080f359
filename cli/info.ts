// `flashoptim info <checkpoint>`: what a checkpoint holds, read through the library's own checks
// (runtime/checkpoint.ts parseCheckpoint: CRC-32, schema), then, for a built-in optimizer, loaded
// whole (loadOptimizer: every field's dtype and length against a fresh optimizer) so the figures
// printed are those of a checkpoint that loads, and the bytes a loaded optimizer holds.

import { loadOptimizer } from '../runtime/optimizer.ts';
import type { Parsed } from '../runtime/checkpoint.ts';
import { parseCheckpoint } from '../runtime/checkpoint.ts';
import { bytesOf } from '../runtime/safetensors.ts';
import type { Io } from './args.ts';
import { parse } from './args.ts';
import { readCheckpoint } from './files.ts';

export const infoHelp = `Usage: flashoptim info <checkpoint> [options]

Print a flashoptim checkpoint's optimizer, storage options, parameter groups, tensors, steps and
bytes per parameter (in the file, and held by the optimizer once loaded).

  <checkpoint>         a file written by saveCheckpointFile / opt.save() (format flashoptim/2)
  --json               the same as one JSON object
  -h, --help           this text`;

/** Bytes per parameter of each stored field, from the file's own tensors (`name::field` keys). */
function fieldBytes(p: Parsed, params: number): Record<string, number> {
  const names = new Set(p.tensors.map((t) => t.name));
  const out: Record<string, number> = {};
  for (const [key, e] of p.data) {
    const field = names.has(key) ? 'p' : key.slice(key.indexOf('::') + 2);
    out[field] = (out[field] ?? 0) + (e.data.length * bytesOf[e.dtype]) / params;
  }
  return out;
}

const round = (x: number) => +x.toFixed(4);

export async function info(argv: readonly string[], io: Io): Promise<number> {
  const who = 'flashoptim info';
  const a = parse(who, argv, { json: { type: 'boolean' } }, ['checkpoint']);
  if (!a) {
    io.out(infoHelp + '\n');
    return 0;
  }
  const path = a.positionals[0]!;
  const bytes = await readCheckpoint(who, path);
  const p = parseCheckpoint(bytes);
  const params = p.tensors.reduce((s, t) => s + t.shape.reduce((x, d) => x * d, 1), 0);
  // A built-in loads without its definition; a custom optimizer's checkpoint is described as parsed.
  let held: { bytesPerParam: number; allocatedPerParam: number } | null = null;
  let loadNote = '';
  try {
    const opt = await loadOptimizer(bytes);
    const m = opt.memory();
    held = { bytesPerParam: round(m.bytesPerParam), allocatedPerParam: round(m.allocatedPerParam) };
    await opt.dispose();
  } catch (e) {
    loadNote = (e as Error).message;
  }
  const perField = Object.fromEntries(Object.entries(fieldBytes(p, params)).map(([k, v]) => [k, round(v)]));
  const report = {
    file: path,
    fileBytes: bytes.length,
    optimizer: p.optimizer,
    structure: p.structure,
    options: p.options,
    stepCount: p.stepCount,
    initialLr: p.initialLr,
    groups: p.groups,
    tensors: p.tensors,
    params,
    fileBytesPerParam: round(params ? bytes.length / params : 0),
    storedBytesPerParam: perField,
    loaded: held ?? { error: loadNote },
  };
  if (a.values['json']) {
    io.out(JSON.stringify(report, null, 1) + '\n');
    return 0;
  }
  const o = p.options;
  const lines = [
    `${path}: flashoptim/2 checkpoint, ${bytes.length} bytes`,
    `optimizer       ${p.optimizer} (${p.structure})`,
    `options         masterWeightBits ${o.masterWeightBits}, paramDtype ${o.paramDtype}, quantize ${o.quantize}, groupSize ${o.groupSize}, scale ${o.scale}, gradDtype ${o.gradDtype}`,
    `steps           ${p.stepCount} (optimizer), initial lr ${p.initialLr}`,
    ...p.groups.map((g, i) => `group ${i}         ${JSON.stringify(g.hyper)}: ${g.params.join(', ')}`),
    `tensors         ${p.tensors.length}, ${params} parameters`,
    ...p.tensors.map((t) => `  ${t.name.padEnd(20)} [${t.shape.join(', ')}]  ${t.steps} steps`),
    `bytes/param     ${report.fileBytesPerParam} in the file (header included); stored fields ${Object.entries(perField)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    held
      ? `loaded          ${held.bytesPerParam} bytes/param held by the optimizer (gradient included), ${held.allocatedPerParam} allocated`
      : `loaded          not loaded: ${loadNote}`,
  ];
  io.out(lines.join('\n') + '\n');
  return 0;
}
