/**
 * `flag-trader reproduce`: the paper's protocol (train window -> test window) over several assets and
 * seeds, with Buy & Hold, rule baselines, the MLP ablation, the untrained LLM and optional zero-shot API
 * agents side by side; writes report.md / report.html / report.json / results.json (src/pipeline/reproduce.ts).
 *
 * `flag-trader demo` (the README's main job) is the same pipeline on the built-in synthetic market with a
 * small random-weight LLM, sized to finish in a few minutes on 2 cores.
 */
import { resolve, join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ANNUALIZATIONS } from '../eval/metrics.js';
import { PAPER_PROTOCOL, protocolAssets } from '../eval/protocol.js';
import { reproduce, type ExtraAgent, type ReproduceOptions, type ReproduceTarget } from '../pipeline/reproduce.js';
import { renderMarkdown } from '../report/markdown.js';
import { readConfigFile, parseTrainConfig, type ConfigKey } from '../rl/config.js';
import { availableParallelism } from 'node:os';
import { parseConfigFlag } from './train.js';
import { seedListOption } from '../util/seed.js';
import { addApiAgentOptions, apiAgentOptionsFromFlags, createApiAgentFromOptions } from '../agents/api-options.js';

function parseList(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

export function parsePositiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

/** Training-config flags that reproduce and demo pass through to every run. */
const PASS_THROUGH: Array<[ConfigKey, string]> = [
  ['model', 'LLM: folder, Hub id or random:<config>'],
  ['tokenizer', 'LLM: tokenizer.json to use with the model'],
  ['trainable_layers', 'LLM: trainable top layers'],
  ['policy_head', 'LLM: lm or linear policy head'],
  ['prompt_style', 'LLM: full or compact prompt'],
  ['prompt_max_tokens', 'LLM: prompt budget in tokens (null = none)'],
  ['allow_text_overlap', 'LLM: true = run even when a test window starts on or before the model\'s text cutoff (recorded in the runs and the report)'],
  ['total_timesteps', 'environment steps per training run'],
  ['learning_rate', 'AdamW learning rate'],
  ['threads', 'compute threads (0 = all cores)'],
  ['synthetic_seed', 'seed of the built-in synthetic market (demo; unused with data files)'],
  ['synthetic_news_tags', 'true/false: synthetic headlines end with their sentiment tag (demo; unused with data files)'],
];

function addPassThrough(cmd: Command): Command {
  for (const [key, doc] of PASS_THROUGH) {
    const flag = key.replace(/_/g, '-');
    cmd.addOption(new Option(`--${flag} <value>`, doc).argParser((raw: string) => {
      try { return { value: parseConfigFlag(key, raw) }; } catch (e) { throw new InvalidArgumentError((e as Error).message); }
    }));
  }
  return cmd;
}

function baseConfig(opts: Record<string, unknown>, defaults: Record<string, unknown>): Record<string, unknown> {
  const base: Record<string, unknown> = { ...defaults, ...(opts.config ? readConfigFile(opts.config as string) : {}) };
  for (const [key] of PASS_THROUGH) {
    const camel = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    const v = opts[camel] as { value: unknown } | undefined;
    if (v !== undefined) base[key] = v.value; // wrapped so that a null value survives commander
  }
  return base;
}

/**
 * The zero-shot API agent of --base-url: its prompt flags are --api-prompt-style, --api-prompt-max-chars,
 * --api-prompt-max-tokens and --api-prompt-tokenizer (--prompt-style and --prompt-max-tokens set the
 * trained LLM's prompt here); its prompt's wording follows each run's mode and allow_short.
 */
export function zeroShotAgents(opts: Record<string, unknown>): ExtraAgent[] {
  if (opts.baseUrl === undefined) return [];
  const flags = apiAgentOptionsFromFlags(opts, 'api');
  createApiAgentFromOptions(flags, {}, 'api'); // fail early on bad flags, before any training
  return [{
    name: `zero-shot ${String(opts.apiModel)}`, kind: 'zero-shot',
    create: (env) => createApiAgentFromOptions({ ...flags, ...(env && { mode: env.mode, allowShort: env.allowShort }) }, {}, 'api'),
  }];
}

function progressLogger(quiet: boolean) {
  const started = Date.now();
  return {
    log: (m: string) => { if (!quiet) process.stderr.write(`${m}\n`); },
    onUpdate: (label: string, update: number) => {
      if (!quiet && update % 10 === 0) process.stderr.write(`${label}: update ${update} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
    },
  };
}

async function runAndPrint(o: ReproduceOptions): Promise<void> {
  const t0 = Date.now();
  const { summaries, files } = await reproduce(o);
  process.stdout.write(renderMarkdown({ title: o.title, notes: [], assets: [], training: [] }, summaries));
  process.stdout.write(`\nfinished in ${((Date.now() - t0) / 1000).toFixed(0)} s; wrote ${files.join(', ')}\n`);
}

export function registerReproduce(program: Command): void {
  const cmd = program
    .command('reproduce')
    .description('the paper protocol: train on each asset\'s train window, evaluate on its test window, over several seeds; writes a report')
    .option('--data-dir <dir>', 'folder with investorbench/ and yahoo/ (default: $FLAG_TRADER_DATA_DIR)')
    .option('--assets <list>', `comma-separated, from ${PAPER_PROTOCOL.map((p) => p.asset).join(', ')} (default all)`, parseList)
    .option('--seeds <list>', 'training seeds', seedListOption('--seeds'), [1, 2, 3])
    .option('--out <dir>', 'output folder (reused: finished runs are kept, unfinished ones resumed)', 'runs/reproduce')
    .option('--config <file>', 'training config (JSON/YAML) for every run; data, windows and seed are set per run')
    .option('--baselines <list>', 'rule baselines besides Buy & Hold', parseList, ['momentum', 'sma-crossover'])
    .option('--no-mlp-ablation', 'skip the MLP ablation runs')
    .option('--no-untrained', 'skip the untrained-LLM rows')
    .option('--bootstrap-resamples <n>', 'resamples of the Sharpe-difference bootstrap', parsePositiveInt, 2000)
    .option('--workers <n>', 'train the runs in this many processes at once (threads divided between them)', parsePositiveInt, 1)
    .option('--quiet', 'no progress lines');
  addPassThrough(cmd);
  addApiAgentOptions(cmd, 'api');
  cmd.action(async (opts: Record<string, unknown>) => {
    const dataDir = (opts.dataDir as string | undefined) ?? process.env.FLAG_TRADER_DATA_DIR;
    if (!dataDir) throw new Error('reproduce needs the market data folder: pass --data-dir DIR or set FLAG_TRADER_DATA_DIR (the folder holding investorbench/ and yahoo/)');
    const targets: ReproduceTarget[] = protocolAssets(opts.assets as string[] | undefined).map((p) => ({
      asset: p.asset, data: resolve(dataDir, p.file), format: p.format, annualization: { ...ANNUALIZATIONS[p.annualization] },
      train: p.train, test: p.test, ...(p.note && { note: p.note }),
    }));
    const p = progressLogger(Boolean(opts.quiet));
    await runAndPrint({
      out: opts.out as string, title: 'FLAG-Trader reproduction', targets, seeds: opts.seeds as number[],
      base: baseConfig(opts, {}), mlpAblation: opts.mlpAblation as boolean, untrained: opts.untrained as boolean,
      baselines: opts.baselines as string[], extraAgents: zeroShotAgents(opts), workers: opts.workers as number,
      bootstrapResamples: opts.bootstrapResamples as number,
      notes: ['Protocol: train on each asset\'s train window, evaluate the greedy policy on its test window (INVESTOR-BENCH windows).'],
      ...p,
    });
  });
}

/**
 * The demo's settings: every training default (the pretrained flag-news-small, its top 2 layers
 * trained, the heads on the mean final hidden state, the measured PPO settings: docs/learning.md),
 * with a budget that fits the 6-minute main job, on the synthetic market with more informative news
 * than the generator's default (85% of headlines carry the regime's sentiment instead of 70%), so that
 * what the policy learns from reading shows within that budget.
 */
export const DEMO_CONFIG = {
  prompt_style: 'compact', prompt_max_tokens: null, total_timesteps: 3000, synthetic_days: 2000, synthetic_news_accuracy: 0.85,
} as const;

/** The LLM ablation of the demo: the same shape and settings with random weights (no pretraining). */
export const RANDOM_INIT_VARIANT = { name: 'LLM policy, random init (ablation)', key: 'llm-random', overrides: { model: 'random:small' } };

export function registerDemo(program: Command): void {
  const cmd = program
    .command('demo')
    .description('the main job: train a small LLM policy with PPO on the built-in synthetic market, evaluate it against the baselines, write a report')
    .option('--seeds <list>', 'training seeds', seedListOption('--seeds'), [1, 2])
    .option('--out <dir>', 'output folder', 'runs/demo')
    .option('--config <file>', 'training config (JSON/YAML) overriding the demo settings')
    .option('--bootstrap-resamples <n>', 'resamples of the Sharpe-difference bootstrap', parsePositiveInt, 2000)
    .option('--workers <n>', 'train the runs in this many processes at once (default: one per core)', parsePositiveInt, Math.max(1, availableParallelism()))
    .option('--random-init', 'also train the same LLM from random weights (the pretraining ablation)')
    .option('--quiet', 'no progress lines');
  addPassThrough(cmd);
  cmd.action(async (opts: Record<string, unknown>) => {
    const p = progressLogger(Boolean(opts.quiet));
    const out = opts.out as string;
    const base = baseConfig(opts, { ...DEMO_CONFIG });
    const c = parseTrainConfig({ ...base, policy: 'llm' }, 'demo');
    await runAndPrint({
      out, title: 'FLAG-Trader demo: synthetic market', seeds: opts.seeds as number[],
      targets: [{ asset: 'SYNTH', data: 'synthetic', format: 'auto', annualization: { ...ANNUALIZATIONS.stock }, train: null, test: null }],
      base, mlpAblation: true, untrained: true, workers: opts.workers as number,
      llmVariants: opts.randomInit ? [RANDOM_INIT_VARIANT] : [],
      baselines: ['sentiment', 'momentum', 'sma-crossover', 'random'], bootstrapResamples: opts.bootstrapResamples as number,
      notes: [`Built-in synthetic market, seed ${c.synthetic_seed} (regime-switching prices; ${Math.round(100 * c.synthetic_news_accuracy)}% of headlines carry the regime's sentiment${c.synthetic_news_tags ? ', each ending with its sentiment tag' : ', without sentiment tags: only the words carry it'}): train on the first 70% of days, test on the rest.`,
        `LLM: ${c.model}, top ${c.trainable_layers} layers trained, ${c.policy_head} heads on the ${c.head_input === 'mean' ? 'mean final hidden state after the system turn' : 'answer position'}, ${c.prompt_style} prompt; PPO for ${c.total_timesteps} steps per seed (gamma ${c.gamma}, ${c.num_steps}-step rollouts, ${c.update_epochs} epochs of minibatches of ${c.minibatch_size}, learning rate ${c.learning_rate}, entropy ${c.ent_coef}, KL ${c.kl_coef}).`],
      ...p,
    });
    process.stdout.write(`open ${join(out, 'report.html')} in a browser for the charts\n`);
  });
}
