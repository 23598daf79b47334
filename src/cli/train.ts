/**
 * `flag-trader train`: PPO training of a policy (src/rl/), and `flag-trader evaluate`: backtest a
 * trained run on its test window beside rule baselines.
 *
 * train: the config is the defaults of src/rl/config.ts, then `--config FILE` (JSON or YAML), then one
 * flag per config field (`--learning-rate 3e-4`, `--target-kl null`, `--mlp-hidden 64,64`). The run
 * directory (`--out`) receives config.json, metrics.jsonl, checkpoints and the final policy (see
 * src/rl/run.ts); `--resume DIR` continues an interrupted run from its last checkpoint. Progress goes
 * to stderr (a bar on a terminal; a line per checkpoint otherwise; nothing with --quiet); the config
 * and a summary go to stdout.
 *
 * evaluate: prints the same table or JSON as `flag-trader backtest` (one JSON object per agent, an
 * array for several).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { agentNames } from '../agents/registry.js';
import { addApiAgentOptions } from '../agents/api-options.js';
import { parseAnnualization, type Annualization } from '../eval/metrics.js';
import {
  CONFIG_KEYS, configFieldDocs, flagName, parseFlagValue, parseTrainConfig, readConfigFile, type ConfigKey, type TrainConfig,
} from '../rl/config.js';
import { DEFAULT_BASELINES, evaluateRun, type DataOverrides } from '../eval/evaluate.js';
import type { UpdateMetrics } from '../rl/ppo.js';
import { RUN_FILES, runTraining, type TrainRunResult } from '../rl/run.js';
import { formatTable, toRecord } from './backtest.js';
import { parseSeedValue, seedListOption } from '../util/seed.js';

/** commander's attribute name for a flag: --learning-rate -> learningRate. */
export function camel(flag: string): string {
  return flag.replace(/-([a-z0-9])/g, (_, ch: string) => ch.toUpperCase());
}

/** commander turns an option value of null into '' — so `--target-kl null` travels as this marker. */
const NULL_VALUE = Symbol('null');

/** Config fields that are seeds: their flags go through the one seed parser (src/util/seed.ts) first. */
export const SEED_KEYS: readonly string[] = ['seed', 'model_seed', 'synthetic_seed'];

/** A config field's flag value: seeds are checked by the one seed rule, then every value by the field's schema. */
export function parseConfigFlag(key: ConfigKey, raw: string): unknown {
  return parseFlagValue(key, SEED_KEYS.includes(key) ? String(parseSeedValue(`--${flagName(key)}`, raw)) : raw);
}

function configOption(key: ConfigKey, doc: string, def: unknown): Option {
  return new Option(`--${flagName(key)} <value>`, `${doc} (default: ${JSON.stringify(def)})`).argParser((raw: string) => {
    try {
      const v = parseConfigFlag(key, raw);
      return v === null ? NULL_VALUE : v;
    } catch (e) { throw new InvalidArgumentError((e as Error).message); }
  });
}

function parseIntArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

function parseList(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

/** `--flag` alone is true (commander passes true); `--flag true|false` as written. */
function parseBoolArg(v: string | boolean): boolean {
  if (v === true || v === 'true') return true;
  if (v === 'false') return false;
  throw new InvalidArgumentError(`expected true or false, got ${JSON.stringify(v)}`);
}

function parseAnnualizationArg(v: string): Annualization {
  try { return parseAnnualization(v); } catch (e) { throw new InvalidArgumentError((e as Error).message); }
}

function timestamp(): string {
  const d = new Date(), p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

const fmt = (x: number | null, digits = 4) => (x === null ? 'n/a' : Number.isInteger(x) ? String(x) : x.toFixed(digits));

/** The end-of-run summary printed on stdout. */
export function formatSummary(r: TrainRunResult, all: UpdateMetrics[]): string {
  const { record } = r;
  const last = all[all.length - 1];
  const out: string[] = [];
  out.push(`run ${r.out}: policy ${record.policy.kind} (${record.policy.parameters} parameters), ${record.hashes.data.source}, train ${record.train_window.start}..${record.train_window.end}`);
  const steps = last?.global_step ?? 0;
  const sps = r.seconds > 0 ? (r.metrics.length * record.derived.batch_size) / r.seconds : 0;
  out.push(`updates ${r.updatesDone}/${record.derived.num_updates} (${steps} environment steps); this session ${r.metrics.length} updates in ${r.seconds.toFixed(1)} s (${sps.toFixed(0)} steps/s)`);
  if (last) {
    out.push(`last update: entropy ${fmt(last.entropy)}, kl_ref ${fmt(last.kl_ref)}, approx_kl ${fmt(last.approx_kl)}, clipfrac ${fmt(last.clipfrac)}, explained variance ${fmt(last.explained_variance)}, lr ${last.learning_rate.toExponential(3)}`);
    const recent = all.slice(-10).filter((m) => m.episode_return !== null);
    const first = all.slice(0, 10).filter((m) => m.episode_return !== null);
    const mean = (xs: UpdateMetrics[]) => xs.reduce((s, m) => s + m.episode_return!, 0) / xs.length;
    if (first.length && recent.length) {
      out.push(`mean episode return: first 10 updates ${fmt(mean(first))}, last 10 updates ${fmt(mean(recent))}`);
    }
  }
  if (r.stopped) out.push(`stopped after update ${r.updatesDone} as asked; continue with: flag-trader train --resume ${r.out}`);
  else out.push(`files: ${Object.values(RUN_FILES).join(', ')}; next: flag-trader evaluate --run ${r.out}`);
  return out.join('\n') + '\n';
}

export function registerTrain(program: Command): void {
  const train = program
    .command('train')
    .description('train a trading policy with PPO (config: defaults < --config FILE < flags)')
    .option('--config <file>', 'config file (JSON or YAML) with any of the fields below')
    .option('--out <dir>', 'run directory (default: runs/<policy>-seed<seed>-<time>)')
    .option('--resume <dir>', 'continue the run in DIR from its last checkpoint (its config.json is used)')
    .option('--quiet', 'no progress output and no config print')
    .option('--stop-after <updates>', 'stop once this many updates are done, as if interrupted (resume later)', parseIntArg);
  for (const f of configFieldDocs()) train.addOption(configOption(f.key, f.doc, f.default));
  train.action(async (opts: Record<string, unknown>) => {
    const given: Partial<Record<ConfigKey, unknown>> = {};
    for (const key of CONFIG_KEYS) {
      const v = opts[camel(flagName(key))];
      if (v !== undefined) given[key] = v === NULL_VALUE ? null : v;
    }
    const quiet = Boolean(opts.quiet);
    const resume = opts.resume as string | undefined;
    let config: TrainConfig | undefined;
    let out: string;
    if (resume !== undefined) {
      const extra = [...Object.keys(given).map((k) => `--${flagName(k)}`), ...(opts.config ? ['--config'] : []), ...(opts.out ? ['--out'] : [])];
      if (extra.length) throw new Error(`--resume uses the run's own config; remove ${extra.join(', ')}`);
      out = resume;
    } else {
      const file = opts.config as string | undefined;
      const fromFile = file ? readConfigFile(file) : {};
      config = parseTrainConfig({ ...fromFile, ...given }, file ? `${file} and the command line` : 'command line');
      out = (opts.out as string | undefined) ?? `runs/${config.policy}-seed${config.seed}-${timestamp()}`;
    }

    const all: UpdateMetrics[] = [];
    let checkpointEvery = 10;
    let bar: cliProgress.SingleBar | null = null;
    const progressLines = !quiet && !process.stderr.isTTY;
    const result = await runTraining({
      out,
      ...(config ? { config } : {}),
      resume: resume !== undefined,
      ...(opts.stopAfter !== undefined ? { stopAfter: opts.stopAfter as number } : {}),
      log: (msg) => { if (!quiet) process.stderr.write(msg + '\n'); },
      onStart: ({ record, startUpdate }) => {
        checkpointEvery = record.config.checkpoint_every;
        if (!quiet) process.stdout.write(JSON.stringify(record, null, 2) + '\n');
        if (!quiet && process.stderr.isTTY) {
          bar = new cliProgress.SingleBar({
            format: 'train |{bar}| {value}/{total} updates | {sps} steps/s | ETA {eta_formatted}',
            stream: process.stderr, hideCursor: true, etaBuffer: 20,
          }, cliProgress.Presets.shades_classic);
          bar.start(record.derived.num_updates, startUpdate, { sps: '-' });
        }
      },
      onUpdate: (m) => {
        all.push(m);
        (bar as cliProgress.SingleBar | null)?.update(m.update, { sps: m.steps_per_sec.toFixed(0) });
        if (progressLines && m.update % checkpointEvery === 0) {
          process.stderr.write(`update ${m.update}: entropy ${fmt(m.entropy)}, kl_ref ${fmt(m.kl_ref)}, episode return ${fmt(m.episode_return)}, ${m.steps_per_sec.toFixed(0)} steps/s\n`);
        }
      },
    });
    (bar as cliProgress.SingleBar | null)?.stop();
    if (!quiet) process.stdout.write(formatSummary(result, all));
  });

  const evaluate = program
    .command('evaluate')
    .description('backtest a trained run on its test window beside rule baselines (same output as backtest)')
    .requiredOption('--run <dir>', 'training run directory')
    .option('--data <path>', 'market data file (default: the run\'s data)')
    .addOption(new Option('--format <format>', 'data format').choices(['auto', 'yahoo', 'long', 'investorbench']))
    .option('--ticker <ticker>', 'ticker to select from a long-format file')
    .option('--price-column <name>', 'price column of a CSV file')
    .option('--test-start <date>', 'first date of the test window (default: the run\'s test_start, else the day after its training window)')
    .option('--test-end <date>', 'last date of the test window (default: the run\'s test_end, else the last date)')
    .option('--sampled', 'sample actions from the policy (one backtest per seed) instead of the greedy argmax')
    .option('--seeds <list>', 'seeds of the sampled backtests, comma-separated (default 0)', seedListOption('--seeds'))
    .option('--baselines <list>', `rule baselines beside the policy, comma-separated, or none (known: ${agentNames().join(', ')})`, parseList)
    .option('--annualization <spec>', 'stock (252/252), crypto (vol 365, sr 252) or VOL,SR', parseAnnualizationArg)
    .option('--untrained', 'evaluate the run\'s initial (untrained) policy instead, for comparison')
    .option('--adapter <dir>', 'a PEFT LoRA adapter folder whose A and B replace the run\'s trained adapters (a run trained with adapter lora; heads stay the run\'s)')
    .addOption(new Option('--allow-text-overlap [value]', 'evaluate even when the test window starts on or before the model\'s text cutoff (default: the run\'s allow_text_overlap)')
      .argParser(parseBoolArg))
    .option('--json', 'print JSON (one object per agent; an array for several)');
  // An API agent among --baselines (e.g. openai) takes the same flags as in backtest, prompt budget included.
  addApiAgentOptions(evaluate)
    .action(async (opts: {
      run: string; data?: string; format?: TrainConfig['format']; ticker?: string; priceColumn?: string; testStart?: string; testEnd?: string;
      sampled?: boolean; seeds?: number[]; baselines?: string[]; annualization?: Annualization; untrained?: boolean; json?: boolean; adapter?: string;
      allowTextOverlap?: boolean;
    }) => {
      if (opts.seeds && !opts.sampled) throw new Error('--seeds applies only with --sampled (the greedy policy is deterministic)');
      const overrides: DataOverrides = {};
      if (opts.data !== undefined) overrides.data = opts.data;
      if (opts.format !== undefined) overrides.format = opts.format;
      if (opts.ticker !== undefined) overrides.ticker = opts.ticker;
      if (opts.priceColumn !== undefined) overrides.price_column = opts.priceColumn;
      if (opts.testStart !== undefined) overrides.test_start = parseFlagValue('test_start', opts.testStart) as string;
      if (opts.testEnd !== undefined) overrides.test_end = parseFlagValue('test_end', opts.testEnd) as string;
      const baselines = opts.baselines === undefined ? DEFAULT_BASELINES : opts.baselines.length === 1 && opts.baselines[0] === 'none' ? [] : opts.baselines;
      const results = await evaluateRun({
        run: opts.run, overrides, baselines, agentOptions: opts as Record<string, unknown>,
        sampled: Boolean(opts.sampled),
        ...(opts.seeds ? { seeds: opts.seeds } : {}),
        ...(opts.annualization ? { annualization: opts.annualization } : {}),
        weights: opts.untrained ? 'initial' : 'trained',
        ...(opts.adapter !== undefined && { adapter: opts.adapter }),
        ...(opts.allowTextOverlap !== undefined && { allowTextOverlap: opts.allowTextOverlap }),
        log: (m) => process.stderr.write(`${m}\n`),
      });
      if (opts.json) {
        const records = results.map(toRecord);
        process.stdout.write(JSON.stringify(records.length === 1 ? records[0] : records) + '\n');
      } else {
        process.stdout.write(formatTable(results));
      }
    });
}
