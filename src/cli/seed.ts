/**
 * The one parser of seed flags of every command (--seed, --seeds, --weights-seed, --model-seed,
 * --synthetic-seed, --synthetic-seeds, --api-seed): the rule of src/util/seed.ts, with errors that
 * name the flag.
 */
import { InvalidArgumentError } from 'commander';
import { seedNumber, seedProblem } from '../util/seed.js';

export { SEED_RANGE } from '../util/seed.js';

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
