/**
 * Does the LLM policy learn? Trains it with PPO on the built-in synthetic market (the train span) for
 * several seeds and compares the EXPECTED cumulative log return of the trained and the untrained
 * policy on the held-out span, computed exactly (not sampled): the distribution over the position held
 * coming into each day is carried forward, since prices and news do not depend on the actions.
 *
 *   node --import tsx bench/learn.ts [--json] [--seeds 1,2,3] [--policy llm|mlp] [--steps 13860] [KEY=VALUE ...]
 *
 * Extra KEY=VALUE arguments are training-config fields (e.g. trainable_layers=2 policy_head=linear).
 * Too slow for the test suite at the full budget (minutes per seed), so it is a benchmark-style script.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { parseTrainConfig, type TrainConfig } from '../src/rl/config.js';
import { configField } from './config-field.js';
import { runTraining, RUN_FILES } from '../src/rl/run.js';
import { loadRunSeries, testWindow } from '../src/rl/data.js';
import { createPolicy } from '../src/rl/policies.js';
import { loadParamsInto, readPolicyTensors } from '../src/rl/checkpoint.js';
import { savedTensors, type ActorCritic } from '../src/rl/policy.js';
import { TradingEnv } from '../src/env/trading-env.js';
import { positiveInt } from '../src/util/options.js';
import { seedListOption } from '../src/util/seed.js';

async function expectedTestReturn(policy: ActorCritic, c: TrainConfig): Promise<number> {
  const { series } = await loadRunSeries(c);
  const w = testWindow(series, c);
  const env = new TradingEnv(series, { start: 'first', windowStart: w.startIndex, windowEnd: w.endIndex, maxEpisodeSteps: w.endIndex - w.startIndex, lookback: c.lookback });
  const POSITION = [1, -1, 0]; // buy, sell, hold
  let obs = env.reset();
  let q = [0, 1, 0]; // P(position coming into the day = -1, 0, +1)
  let total = 0;
  for (;;) {
    const r = Math.log(series.prices[obs.t + 1]! / series.prices[obs.t]!);
    const next = [0, 0, 0];
    for (let i = 0; i < 3; i++) {
      if (q[i]! === 0) continue;
      const lp = policy.forward(policy.encode({ ...obs, account: { ...obs.account, position: i - 1 } }), false).logProbs;
      for (let a = 0; a < 3; a++) {
        const p = q[i]! * Math.exp(lp[a]!);
        total += p * POSITION[a]! * r;
        next[POSITION[a]! + 1]! += p;
      }
    }
    q = next;
    const res = env.step('hold');
    if (res.done) return total;
    obs = res.observation;
  }
}


interface LearnOptions { json?: boolean; seeds: number[]; policy: string; steps: number }

async function main(o: LearnOptions, extra: Record<string, unknown>): Promise<void> {
  const { json, seeds } = o;
  const base = { policy: o.policy, total_timesteps: o.steps, policy_head: 'linear', learning_rate: 1e-3, prompt_max_tokens: null, ...extra };
  const dir = mkdtempSync(join(tmpdir(), 'flag-learn-'));
  const rows = [];
  try {
    for (const seed of seeds) {
      const c = parseTrainConfig({ ...base, seed }, 'bench/learn');
      const out = join(dir, `seed${seed}`);
      const t0 = performance.now();
      await runTraining({ out, config: c });
      const trainS = (performance.now() - t0) / 1000;
      const trained = await createPolicy(c), untrained = await createPolicy(c);
      loadParamsInto(savedTensors(trained), readPolicyTensors(join(out, RUN_FILES.policy)).params, out);
      const { series } = await loadRunSeries(c);
      const w = testWindow(series, c);
      rows.push({
        seed, trained: await expectedTestReturn(trained, c), untrained: await expectedTestReturn(untrained, c),
        buyAndHold: Math.log(series.prices[w.endIndex]! / series.prices[w.startIndex]!), trainSeconds: trainS,
        stepsPerSecond: c.total_timesteps / trainS,
      });
      if (!json) {
        const r = rows[rows.length - 1]!;
        process.stdout.write(`seed ${seed}: expected held-out CR trained ${(100 * r.trained).toFixed(2)}% vs untrained ${(100 * r.untrained).toFixed(2)}% (Buy & Hold ${(100 * r.buyAndHold).toFixed(2)}%), trained in ${trainS.toFixed(0)} s\n`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (json) process.stdout.write(JSON.stringify({ config: base, rows }) + '\n');
  else process.stdout.write(`trained beat untrained on ${rows.filter((r) => r.trained > r.untrained).length} of ${rows.length} seeds\n`);
}

await new Command('bench/learn.ts')
  .description('train the policy for several seeds and compare the expected held-out return of the trained and the untrained policy')
  .argument('[fields...]', 'training-config fields, KEY=VALUE', configField, {})
  .option('--json', 'print one JSON object')
  .option('--seeds <list>', 'training seeds, comma-separated', seedListOption('--seeds'), [1, 2, 3])
  .addOption(new Option('--policy <name>', 'policy to train').choices(['llm', 'mlp']).default('llm'))
  .option('--steps <n>', 'environment steps per seed (total_timesteps)', positiveInt('--steps'), 13860)
  .action((fields: Record<string, unknown>, o: LearnOptions) => main(o, fields))
  .parseAsync();
