// Command-line arguments: node:util parseArgs in strict mode, its errors turned into one line that
// names the bad argument, and the checks every command shares (a value from a list, a number).

import { parseArgs } from 'node:util';

/** A mistake in how the command was called: one line on stderr, exit status 2. */
export class UsageError extends Error {}

/** A command's flags, in parseArgs' shape (every flag takes a string value or is boolean). */
export type Flags = Record<string, { type: 'string' | 'boolean'; short?: string }>;

export interface Parsed {
  readonly values: Record<string, string | boolean | undefined>;
  readonly positionals: readonly string[];
}

/**
 * Parse `argv` for command `who` with `flags` (plus --help) and exactly `positionals` positional
 * names; null when --help was asked for (the caller prints its help).
 */
export function parse(
  who: string,
  argv: readonly string[],
  flags: Flags,
  positionals: readonly string[],
): Parsed | null {
  let r: ReturnType<typeof parseArgs>;
  try {
    r = parseArgs({
      args: [...argv],
      options: { ...flags, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    throw new UsageError(`${who}: ${reworded(e as Error & { code?: string })}`);
  }
  if (r.values['help']) return null;
  if (r.positionals.length < positionals.length)
    throw new UsageError(`${who}: missing <${positionals[r.positionals.length]}> (see ${who} --help)`);
  if (r.positionals.length > positionals.length)
    throw new UsageError(
      `${who}: unexpected argument ${JSON.stringify(r.positionals[positionals.length])} (see ${who} --help)`,
    );
  return { values: r.values as Parsed['values'], positionals: r.positionals };
}

/** parseArgs' messages run to two sentences and suggest `--`; keep what names the argument. */
function reworded(e: Error & { code?: string }): string {
  const quoted = /'([^']+)'/.exec(e.message)?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${quoted ?? e.message}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return `option ${quoted?.split(' ')[0] ?? ''} ${/argument missing/.test(e.message) ? 'needs a value' : 'takes no value'}`;
    default:
      return e.message.split('\n')[0]!;
  }
}

/** `value` if it is one of `allowed`, else a UsageError naming the flag and the value. */
export function choice<T extends string>(who: string, flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value))
    throw new UsageError(`${who}: ${flag} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

/** A finite number in [min, max] (integer when `integer`), else a UsageError naming the flag and value. */
export function number(who: string, flag: string, value: string, min: number, max: number, integer = false): number {
  const x = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(x) || x < min || x > max || (integer && !Number.isInteger(x)))
    throw new UsageError(
      `${who}: ${flag} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${JSON.stringify(value)}`,
    );
  return x;
}

/** A comma-separated list of integers in [min, max] ('' or 'none' is the empty list). */
export function integers(who: string, flag: string, value: string, min: number, max: number): number[] {
  if (value === '' || value === 'none') return [];
  return value.split(',').map((v) => number(who, flag, v, min, max, true));
}

/** Where a command writes: stdout for results, stderr for progress and errors. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stderr is a terminal: progress may redraw one line. */
  readonly tty: boolean;
}
