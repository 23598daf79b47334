/** The KEY=VALUE arguments of the benchmark scripts: training-config fields, each read as its flag would be. */
import { InvalidArgumentError } from 'commander';
import { parseFlagValue, type ConfigKey } from '../src/rl/config.js';

/** commander argument parser: add one KEY=VALUE to the fields collected so far. */
export function configField(arg: string, fields: Record<string, unknown>): Record<string, unknown> {
  const m = /^([a-z_0-9]+)=(.*)$/.exec(arg);
  if (!m) throw new InvalidArgumentError(`expected KEY=VALUE (a training-config field), got ${JSON.stringify(arg)}`);
  return { ...fields, [m[1]!]: parseFlagValue(m[1] as ConfigKey, m[2]!) };
}
