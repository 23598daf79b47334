/**
 * The one rule for seeds given from outside (command-line flags, API-agent options): an integer
 * written in decimal digits (an optional sign), from -Number.MAX_SAFE_INTEGER to
 * Number.MAX_SAFE_INTEGER: the range the training config and the server's request `seed` accept
 * (zod's int). A larger integer cannot be held exactly in a double (9007199254740993 would become
 * 9007199254740992), so it is refused rather than rounded.
 *
 * The one parser of seed flags of every command and benchmark script (--seed, --seeds,
 * --model-seed, --synthetic-seed, --synthetic-seeds, --api-seed) is below: parseSeedValue,
 * seedOption and seedListOption, with errors that name the flag.
 */
import { InvalidArgumentError } from 'commander';

export const SEED_RANGE = `an integer from ${-Number.MAX_SAFE_INTEGER} to ${Number.MAX_SAFE_INTEGER}`;

/** Whether a value is a seed: a safe integer, or its decimal text (surrounding blanks allowed). */
export function isSeed(v: unknown): boolean {
  if (typeof v === 'number') return Number.isSafeInteger(v);
  return typeof v === 'string' && /^[+-]?\d+$/.test(v.trim()) && Number.isSafeInteger(Number(v.trim()));
}

/** Why a text is not a seed (for "FLAG: <problem>" messages), or null when it is one. */
export function seedProblem(raw: string): string | null {
  const t = raw.trim();
  if (!/^[+-]?\d+$/.test(t)) return `expected an integer, got ${JSON.stringify(raw)} (a seed is ${SEED_RANGE})`;
  if (!isSeed(t)) return `expected ${SEED_RANGE}, got ${t}, beyond Number.MAX_SAFE_INTEGER (a double would round it to ${Number(t)})`;
  return null;
}

/** The number of a value that isSeed accepts (never -0). */
export function seedNumber(v: number | string): number {
  const n = typeof v === 'number' ? v : Number(v.trim());
  return n === 0 ? 0 : n;
}

/** Parse one seed; the error names the flag, the rule and the value given. */
export function parseSeedValue(flag: string, raw: string): number {
  const problem = seedProblem(raw);
  if (problem !== null) throw new InvalidArgumentError(`${flag}: ${problem}`);
  return seedNumber(raw);
}

/** A commander argument parser for a seed flag. */
export function seedOption(flag: string): (raw: string) => number {
  return (raw: string) => parseSeedValue(flag, raw);
}

/** A commander argument parser for a comma-separated list of seeds (at least one). */
export function seedListOption(flag: string): (raw: string) => number[] {
  return (raw: string) => {
    const parts = raw.split(',');
    return parts.map((p, i) => {
      const problem = seedProblem(p);
      if (problem !== null) {
        throw new InvalidArgumentError(`${flag}${parts.length > 1 ? `: item ${i + 1} of ${JSON.stringify(raw)}` : ''}: ${problem}`);
      }
      return seedNumber(p);
    });
  };
}
