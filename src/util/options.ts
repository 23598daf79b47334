/**
 * Parsers of command-line option values (commander argument parsers) shared by the commands of
 * src/cli and the benchmark scripts of bench/; each error names the option and what it expected.
 * Seeds have their own parsers (src/util/seed.ts).
 */

/** Where a command writes: its result to `out`, progress and notes to `err` (tests pass their own). */
export interface CommandIo {
  out(text: string): void;
  err(text: string): void;
}

/** The process's standard output and error. */
export const STDIO: CommandIo = {
  out: (t) => { process.stdout.write(t); },
  err: (t) => { process.stderr.write(t); },
};

export function positiveInt(option: string) {
  return (raw: string): number => {
    const n = Number(raw);
    if (!/^\s*\d+\s*$/.test(raw) || !Number.isInteger(n) || n < 1) throw new Error(`${option} must be a positive integer, got "${raw}"`);
    return n;
  };
}

export function nonNegativeInt(option: string) {
  return (raw: string): number => {
    const n = Number(raw);
    if (!/^\s*\d+\s*$/.test(raw) || !Number.isInteger(n)) throw new Error(`${option} must be an integer >= 0, got "${raw}"`);
    return n;
  };
}

export function nonNegativeNumber(option: string) {
  return (raw: string): number => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || n < 0) throw new Error(`${option} must be a number >= 0, got "${raw}"`);
    return n;
  };
}

/** "1,2,3" -> [1, 2, 3]: non-negative integers, at least one. */
export function intList(option: string, min = 0) {
  return (raw: string): number[] => {
    const parts = raw.split(',');
    return parts.map((p, i) => {
      const s = p.trim();
      const n = Number(s);
      if (!/^\d+$/.test(s) || n < min) {
        throw new Error(`${option}: item ${i + 1} of "${raw}" is "${p}", expected an integer >= ${min} (comma-separated list)`);
      }
      return n;
    });
  };
}

export function backendChoice(raw: string): 'native' | 'typescript' | 'auto' {
  if (raw === 'native' || raw === 'typescript' || raw === 'auto') return raw;
  throw new Error(`--backend must be native, typescript or auto, got "${raw}"`);
}
