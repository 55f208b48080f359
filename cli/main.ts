// The `flashoptim` command (bin/flashoptim.mjs runs `main`). Each command is a module of its own;
// this file picks one and turns every failure into ONE line on stderr: exit 2 when the command was
// called wrongly (an unknown command or option, a bad value, a missing file), 1 when the work
// failed (a corrupted checkpoint, a file that cannot be written).

import type { Io } from './args.ts';
import { UsageError } from './args.ts';
import { benchCommand } from './bench.ts';
import { convert } from './convert.ts';
import { info } from './info.ts';
import { inspect } from './inspect.ts';

type Command = (argv: readonly string[], io: Io) => Promise<number>;

const commands: Readonly<Record<string, { run: Command; what: string }>> = {
  inspect: { run: inspect, what: "print an optimizer's fused kernel (JS, WebAssembly, WGSL or gpu.js) and its stats" },
  info: { run: info, what: "print a checkpoint's optimizer, options, tensors, steps and bytes per parameter" },
  convert: { run: convert, what: "write a checkpoint's master weights as float32 safetensors (--fp32 <file>)" },
  bench: { run: benchCommand, what: 'time the fused step on the CPU against TF.js and plain fp32 AdamW' },
};

export const help = `Usage: flashoptim <command> [options]

Commands:
${Object.entries(commands)
  .map(([k, c]) => `  ${k.padEnd(10)} ${c.what}`)
  .join('\n')}

flashoptim <command> --help describes each one.`;

/** The process's streams; a reader that stops early (\`| head\`) ends the command quietly. */
export function processIo(): Io {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  return {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    tty: process.stderr.isTTY === true,
  };
}

/** Run the command line `argv` (without node and the script); the exit status. */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    io.out(help + '\n');
    return 0;
  }
  const c = name !== undefined && Object.prototype.hasOwnProperty.call(commands, name) ? commands[name] : undefined;
  try {
    if (name === undefined)
      throw new UsageError(`flashoptim: missing command (${Object.keys(commands).join(', ')}; see flashoptim --help)`);
    if (!c)
      throw new UsageError(
        `flashoptim: unknown command ${JSON.stringify(name)} (commands: ${Object.keys(commands).join(', ')}; see flashoptim --help)`,
      );
    return await c.run(rest, io);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    // One line: library messages are single sentences, but a nested error may carry newlines.
    const line = message.replace(/\s*\n\s*/g, ' ');
    io.err(`${line.startsWith('flashoptim') ? line : `flashoptim ${name}: ${line}`}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}
