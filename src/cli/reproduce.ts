/**
 * `flag-trader reproduce`: the paper's protocol (train window -> test window) over several assets and
 * seeds, with Buy & Hold, rule baselines, the MLP ablation, the untrained LLM and optional zero-shot API
 * agents side by side; writes report.md / report.html / report.json / results.json (src/pipeline/reproduce.ts).
 * `--data FILE` runs one file of the user's choice instead of the protocol's assets, and
 * `--walk-forward TRAIN:TEST:STEP` repeats the protocol over successive windows (src/pipeline/walk-forward.ts).
 *
 * `flag-trader demo` (the README's main job) is the same pipeline on the built-in synthetic market with a
 * small random-weight LLM, sized to finish in a few minutes on 2 cores.
 */
import { resolve, join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ANNUALIZATIONS, parseAnnualization, type Annualization } from '../eval/metrics.js';
import { PAPER_PROTOCOL, protocolAssets } from '../eval/protocol.js';
import { checkWalkForwardBounds, parseWalkForwardSpec, type WalkForwardSpec } from '../eval/walk-forward.js';
import { reproduce, type ExtraAgent, type ReproduceOptions, type ReproduceResult, type ReproduceTarget } from '../pipeline/reproduce.js';
import { walkForward } from '../pipeline/walk-forward.js';
import { checkRedis, parseRedisUrl, type QueueOptions, type QueueResults } from '../pipeline/queue.js';
import { assetFromPath } from '../data/file-source.js';
import { isIsoDate } from '../data/dates.js';
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

async function runAndPrint(o: ReproduceOptions, run: () => Promise<ReproduceResult> = () => reproduce(o)): Promise<void> {
  const t0 = Date.now();
  const { summaries, walkForward: wf, files } = await run();
  process.stdout.write(renderMarkdown({ title: o.title, notes: [], assets: [], training: [] }, summaries, wf));
  process.stdout.write(`\nfinished in ${((Date.now() - t0) / 1000).toFixed(0)} s; wrote ${files.join(', ')}\n`);
}

export function parseNonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number >= 0, got ${JSON.stringify(v)}`);
  return n;
}

function queueUrlOption(v: string): string {
  try { return parseRedisUrl(v); } catch (e) { throw new InvalidArgumentError((e as Error).message.replace(/^--queue: /, '')); }
}

/** The queue settings of a reproduce command line (none without --queue; its flags alone are errors). */
export function queueOptions(opts: Record<string, unknown>, given: (name: string) => boolean): QueueOptions | undefined {
  if (opts.queue === undefined) {
    for (const [key, flag] of [['attempts', '--attempts'], ['backoff', '--backoff'], ['queueResults', '--queue-results']]) {
      if (given(key!)) throw new Error(`${flag} applies only with --queue redis://HOST:PORT`);
    }
    return undefined;
  }
  if (given('workers')) throw new Error('--workers trains the runs here and --queue on `flag-trader worker` processes: give one or the other');
  return {
    url: opts.queue as string, attempts: opts.attempts as number, backoffMs: opts.backoff as number,
    results: (opts.queueResults as QueueResults | undefined) ?? 'shared',
  };
}

function walkForwardOption(v: string): WalkForwardSpec {
  try { return parseWalkForwardSpec(v); } catch (e) { throw new InvalidArgumentError((e as Error).message); }
}

function dateOption(flag: string) {
  return (v: string): string => {
    if (!isIsoDate(v)) throw new InvalidArgumentError(`${flag}: expected a date YYYY-MM-DD, got ${JSON.stringify(v)}`);
    return v;
  };
}

function annualizationOption(v: string): Annualization {
  try { return parseAnnualization(v); } catch (e) { throw new InvalidArgumentError(`--annualization: ${(e as Error).message}`); }
}

/** Flags of a --data target, which mean nothing without --data. */
const DATA_FLAGS: Array<[string, string]> = [['format', '--format'], ['ticker', '--ticker'], ['priceColumn', '--price-column'], ['asset', '--asset'], ['annualization', '--annualization']];
/** Flags of a walk-forward, which mean nothing without --walk-forward. */
const WALK_FLAGS: Array<[string, string]> = [['expanding', '--expanding'], ['from', '--from'], ['to', '--to']];

/**
 * The targets of a reproduce command line: the protocol's assets (--assets, files under the data folder)
 * or one file of the user's choice (--data, with --format, --ticker, --price-column, --asset and
 * --annualization). Flags that do not apply are errors naming them.
 */
export function reproduceTargets(opts: Record<string, unknown>): ReproduceTarget[] {
  const walking = opts.walkForward !== undefined;
  for (const [key, flag] of WALK_FLAGS) {
    if (opts[key] !== undefined && !walking) throw new Error(`${flag} applies only with --walk-forward TRAIN:TEST:STEP`);
  }
  if (walking) checkWalkForwardBounds(opts.from as string | undefined, opts.to as string | undefined);
  if (opts.data === undefined) {
    for (const [key, flag] of DATA_FLAGS) {
      if (opts[key] !== undefined) throw new Error(`${flag} applies only with --data FILE (the protocol's assets come with their own files and conventions)`);
    }
    const dataDir = (opts.dataDir as string | undefined) ?? process.env.FLAG_TRADER_DATA_DIR;
    if (!dataDir) throw new Error('reproduce needs the market data folder: pass --data-dir DIR or set FLAG_TRADER_DATA_DIR (the folder holding investorbench/ and yahoo/), or --data FILE');
    return protocolAssets(opts.assets as string[] | undefined).map((p) => ({
      asset: p.asset, data: resolve(dataDir, p.file), format: p.format, annualization: { ...ANNUALIZATIONS[p.annualization] },
      // A walk-forward cuts its own windows from the file.
      train: walking ? null : p.train, test: walking ? null : p.test, ...(p.note && { note: p.note }),
    }));
  }
  if (opts.assets !== undefined) throw new Error('--assets picks the paper protocol\'s assets and --data one file of your choice: give one or the other');
  const data = opts.data as string;
  const ticker = (opts.ticker as string | undefined) ?? null;
  const asset = (opts.asset as string | undefined) ?? (data === 'synthetic' ? 'SYNTH' : ticker ?? assetFromPath(data));
  if (asset.trim() === '') throw new Error('--asset: expected a name, got an empty one');
  return [{
    asset, data: data === 'synthetic' ? data : resolve(data), format: (opts.format as ReproduceTarget['format'] | undefined) ?? 'auto',
    ticker, priceColumn: (opts.priceColumn as string | undefined) ?? null,
    annualization: (opts.annualization as Annualization | undefined) ?? { ...ANNUALIZATIONS.stock },
    train: null, test: null,
  }];
}

export function registerReproduce(program: Command): void {
  const cmd = program
    .command('reproduce')
    .description('the paper protocol: train on each asset\'s train window, evaluate on its test window, over several seeds; writes a report')
    .option('--data-dir <dir>', 'folder with investorbench/ and yahoo/ (default: $FLAG_TRADER_DATA_DIR)')
    .option('--assets <list>', `comma-separated, from ${PAPER_PROTOCOL.map((p) => p.asset).join(', ')} (default all)`, parseList)
    .option('--data <file>', 'one market data file of your choice instead of the protocol\'s assets (Yahoo CSV, long CSV[.gz], INVESTOR-BENCH JSON), or `synthetic`')
    .addOption(new Option('--format <format>', 'with --data: data format (default auto)').choices(['auto', 'yahoo', 'long', 'investorbench']))
    .option('--ticker <ticker>', 'with --data: ticker to select from a long-format file')
    .option('--price-column <name>', 'with --data: price column of a CSV file (default Adj Close)')
    .option('--asset <name>', 'with --data: the asset\'s name in the report and run folders (default: the ticker or the file name; the prompt names the asset as the data loader does)')
    .option('--annualization <spec>', 'with --data: stock (252/252, default), crypto (vol 365, sr 252) or VOL,SR', annualizationOption)
    .option('--walk-forward <TRAIN:TEST:STEP>', 'walk-forward: train on TRAIN trading days, test on the TEST days after them, advance by STEP days, over the whole range', walkForwardOption)
    .option('--expanding', 'with --walk-forward: expanding training windows (all from the range\'s first date) instead of rolling ones')
    .option('--from <date>', 'with --walk-forward: first date of the range the windows are cut from (YYYY-MM-DD)', dateOption('--from'))
    .option('--to <date>', 'with --walk-forward: last date of the range (YYYY-MM-DD)', dateOption('--to'))
    .option('--seeds <list>', 'training seeds', seedListOption('--seeds'), [1, 2, 3])
    .option('--out <dir>', 'output folder (reused: finished runs are kept, unfinished ones resumed)', 'runs/reproduce')
    .option('--config <file>', 'training config (JSON/YAML) for every run; data, windows and seed are set per run')
    .option('--baselines <list>', 'rule baselines besides Buy & Hold', parseList, ['momentum', 'sma-crossover'])
    .option('--no-mlp-ablation', 'skip the MLP ablation runs')
    .option('--no-untrained', 'skip the untrained-LLM rows')
    .option('--bootstrap-resamples <n>', 'resamples of the Sharpe-difference bootstrap', parsePositiveInt, 2000)
    .option('--workers <n>', 'train the runs in this many processes at once (threads divided between them)', parsePositiveInt, 1)
    .option('--queue <url>', 'train the runs on a BullMQ queue at redis://HOST:PORT, by `flag-trader worker` processes on any machines (docs/queue.md); evaluate and report here', queueUrlOption)
    .option('--attempts <n>', 'with --queue: attempts per run before it is reported failed', parsePositiveInt, 3)
    .option('--backoff <ms>', 'with --queue: delay before the first retry of a failed run, doubled at each further one', parseNonNegativeInt, 10_000)
    .addOption(new Option('--queue-results <where>', 'with --queue: shared (workers write runs under --out, mounted at the same path everywhere) or redis (workers return each run\'s files through Redis)').choices(['shared', 'redis']))
    .option('--quiet', 'no progress lines');
  addPassThrough(cmd);
  addApiAgentOptions(cmd, 'api');
  cmd.action(async (opts: Record<string, unknown>) => {
    const queue = queueOptions(opts, (name) => cmd.getOptionValueSource(name) === 'cli');
    const targets = reproduceTargets(opts);
    if (queue) await checkRedis(queue.url); // before any planning: a wrong URL fails in seconds
    const p = progressLogger(Boolean(opts.quiet));
    const o: ReproduceOptions = {
      out: opts.out as string, title: 'FLAG-Trader reproduction', targets, seeds: opts.seeds as number[],
      base: baseConfig(opts, {}), mlpAblation: opts.mlpAblation as boolean, untrained: opts.untrained as boolean,
      baselines: opts.baselines as string[], extraAgents: zeroShotAgents(opts), workers: opts.workers as number,
      bootstrapResamples: opts.bootstrapResamples as number, ...(queue && { queue }),
      notes: [opts.data !== undefined
        ? 'Protocol: train on the train window, evaluate the greedy policy on the test window.'
        : 'Protocol: train on each asset\'s train window, evaluate the greedy policy on its test window (INVESTOR-BENCH windows).'],
      ...p,
    };
    const wf = opts.walkForward as WalkForwardSpec | undefined;
    if (wf === undefined) { await runAndPrint(o); return; }
    const spec = { ...wf, expanding: Boolean(opts.expanding) };
    await runAndPrint({ ...o, title: 'FLAG-Trader walk-forward' }, () => walkForward({
      ...o, title: 'FLAG-Trader walk-forward', spec,
      ...(opts.from !== undefined && { from: opts.from as string }), ...(opts.to !== undefined && { to: opts.to as string }),
      notes: ['Protocol: for each window, train on its training days only, evaluate the greedy policy on the test days right after them.'],
    }));
  });
}

/**
 * The demo's settings: every training default (the pretrained flag-trader-small, its top 2 layers
 * trained, its own answer (the lm head) as the policy, the measured PPO settings: docs/learning.md),
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
