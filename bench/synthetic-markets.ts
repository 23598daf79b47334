/**
 * Which synthetic markets can a reader of the news beat Buy & Hold on? For each market seed, the
 * held-out (last 30%) and training-span Sharpe ratios of Buy & Hold and of the sentiment rule (long on
 * more positive than negative tags, short on the opposite, flat otherwise), trading the next day's
 * simple return as the environment does in benchmark mode without costs.
 *
 *   node --import tsx bench/synthetic-markets.ts [--seeds 1,2,...] [--accuracy 0.85] [--days 2000] [--json]
 */
import { Command } from 'commander';
import { syntheticMarket } from '../src/data/synthetic.js';
import { ANNUALIZATIONS, sharpeRatio } from '../src/eval/metrics.js';
import { nonNegativeNumber, positiveInt } from '../src/util/options.js';
import { seedListOption } from '../src/util/seed.js';

const opts = new Command()
  .option('--seeds <list>', 'market seeds', seedListOption('--seeds'), [1, 2, 3, 4, 5, 6, 7, 8])
  .option('--accuracy <p>', 'share of headlines that carry the regime (the demo: 0.85)', nonNegativeNumber('--accuracy'), 0.85)
  .option('--days <n>', 'days per market', positiveInt('--days'), 2000)
  .option('--json', 'print JSON')
  .parse().opts<{ seeds: number[]; accuracy: number; days: number; json?: boolean }>();

const tag = (t: string) => (/\(Sentiment: positive\)/.test(t) ? 1 : /\(Sentiment: negative\)/.test(t) ? -1 : 0);
const rows = opts.seeds.map((seed) => {
  const m = syntheticMarket({ seed, days: opts.days, newsTags: true, newsAccuracy: opts.accuracy });
  const n = m.prices.length, split = Math.floor(n * 0.7);
  const part = (from: number, to: number) => {
    const bh: number[] = [], rule: number[] = [];
    for (let i = from; i < to - 1; i++) {
      const r = m.prices[i + 1]! / m.prices[i]! - 1;
      bh.push(r);
      rule.push(Math.sign((m.text?.[i] ?? []).reduce((a, it) => a + tag(it.text), 0)) * r);
    }
    return { buyAndHold: sharpeRatio(bh, ANNUALIZATIONS.stock), rule: sharpeRatio(rule, ANNUALIZATIONS.stock) };
  };
  return { seed, test: part(split, n), train: part(0, split) };
});
if (opts.json) process.stdout.write(JSON.stringify({ accuracy: opts.accuracy, days: opts.days, rows }) + '\n');
else for (const r of rows) process.stdout.write(`market seed ${r.seed}: test B&H ${r.test.buyAndHold.toFixed(2)}, rule ${r.test.rule.toFixed(2)}; training span B&H ${r.train.buyAndHold.toFixed(2)}, rule ${r.train.rule.toFixed(2)}\n`);
