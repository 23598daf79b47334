/**
 * `flag-trader demo`: for now, the backtest of every rule baseline on the built-in synthetic market
 * (seeded by --seed), printed as a table; --out DIR also writes DIR/backtest.json (a JSON array of the
 * full results: metrics as fractions, positions, returns, dates, equity), atomically.
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import { syntheticMarket } from '../data/synthetic.js';
import { createAgent } from '../agents/registry.js';
import { writeFileAtomic } from '../util/atomic.js';
import { formatTable, parseInteger, runBacktests } from './backtest.js';

/** The rule baselines the demo compares. */
export const DEMO_AGENTS = ['buy-and-hold', 'random', 'momentum', 'sma-crossover'] as const;

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('backtest the rule baselines on the built-in synthetic market')
    .option('--seed <n>', 'seed of the synthetic market and the random agent', parseInteger, 0)
    .option('--out <dir>', 'also write the results as DIR/backtest.json')
    .action(async (opts: { seed: number; out?: string }) => {
      const series = syntheticMarket({ seed: opts.seed });
      const agents = DEMO_AGENTS.map((n) => createAgent(n, { seed: opts.seed }));
      const results = await runBacktests(series, agents, { seed: opts.seed });
      process.stdout.write(formatTable(results));
      if (opts.out) {
        const path = join(opts.out, 'backtest.json');
        writeFileAtomic(path, JSON.stringify(results, null, 2) + '\n');
        process.stdout.write(`wrote ${path}\n`);
      }
    });
}
