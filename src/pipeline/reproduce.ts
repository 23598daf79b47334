/**
 * The paper's protocol over several assets and seeds: for each asset, train the LLM policy with PPO
 * on the train window (one run per seed), evaluate it greedily on the test window, run the baselines
 * (Buy & Hold, rules, optional zero-shot API agents) on the same window, and write a report with
 * mean +- std over seeds and bootstrap intervals of the Sharpe difference against Buy & Hold.
 *
 * Layout of `out`:
 *   runs/<ASSET>/llm-seed<S>/     one training run each (config.json, metrics.jsonl, checkpoints)
 *   runs/<ASSET>/mlp-seed<S>/     the MLP ablation, when enabled
 *   (each run is described by a RunSpec, src/pipeline/run-spec.ts, whose id is its folder; the
 *   walk-forward of src/pipeline/walk-forward.ts puts each window's runs in a folder of their own)
 *   results.json                  every backtest (positions and daily returns) of every agent
 *   report.md, report.html, report.json
 * Finished work is never redone: a run directory with its final policy is reused, one with only a
 * checkpoint is resumed, and the report is rewritten after every asset (atomically), so a killed
 * reproduction continues where it stopped.
 *
 * Where the runs train (trainGrid): in this process one after another, in `workers` child processes,
 * or, with `queue`, as BullMQ jobs for `flag-trader worker` processes on any machines
 * (src/pipeline/queue.ts, docs/queue.md); all three run the same job code (runTrainJob) and give the
 * same runs, which this process then evaluates.
 *
 * Point-in-time: before any training, every target's test window is checked against the model's text
 * cutoff (src/rl/point-in-time.ts; the LLM rows read the model, the MLP rows do not); the report notes
 * the cutoff, and warns about each window that overlaps it (allow_text_overlap).
 */
import { join } from 'node:path';
import type { Agent } from '../agents/agent.js';
import { createAgent } from '../agents/registry.js';
import { backtest, type BacktestResult } from '../eval/backtest.js';
import type { Annualization } from '../eval/metrics.js';
import { parseTrainConfig, type TrainConfig } from '../rl/config.js';
import { loadRunSeries, testWindow } from '../rl/data.js';
import { evaluateRun } from '../eval/evaluate.js';
import { checkRunFile, readRunRecord, RUN_FILES } from '../rl/run.js';
import { describePointInTime, runPointInTime, type PointInTime } from '../rl/point-in-time.js';
import type { AgentResult, AssetResult, ReportInput, TrainingCurve, TrainingPoint } from '../report/types.js';
import { writeReport } from '../report/write.js';
import type { AssetSummary } from '../report/summary.js';
import type { WalkForwardSummary } from '../report/walk-forward.js';
import { writeFileAtomic } from '../util/atomic.js';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { runTrainJob, trainInParallel } from './train-pool.js';
import { runDir, runId, trainJobOf, type RunSpec } from './run-spec.js';
import { trainOnQueue, type QueueOptions } from './queue.js';

export interface ReproduceTarget {
  asset: string;
  /** A data file, or `synthetic`. */
  data: string;
  format: 'auto' | 'yahoo' | 'long' | 'investorbench';
  /** Ticker of a long-format file (default: the file's only one). */
  ticker?: string | null;
  /** Price column of a CSV file (default: the loader's, Adj Close). */
  priceColumn?: string | null;
  annualization: Annualization;
  /** null = the config's defaults (70% / 30% split of the series). */
  train: { start: string; end: string } | null;
  test: { start: string; end: string } | null;
  note?: string;
  /** The folder of this target's runs inside runs/<ASSET>/ (a walk-forward window's key); none = runs/<ASSET>/ itself. */
  group?: string;
}

export interface ExtraAgent {
  name: string;
  kind: 'zero-shot' | 'baseline';
  /** The agent for one target; `env` is the environment it trades in (an API agent words its prompt for it). */
  create: (env?: { mode: TrainConfig['mode']; allowShort: boolean }) => Agent;
}

export interface ReproduceOptions {
  out: string;
  title: string;
  targets: ReproduceTarget[];
  seeds: number[];
  /** Training config fields for every run (file + flags); data, windows and seed are set per run. */
  base: Record<string, unknown>;
  /** Also train the MLP ablation on the same windows and seeds. */
  mlpAblation: boolean;
  /**
   * LLM ablations trained on the same windows and seeds, each a row of the report: `key` names its run
   * folders (runs/<ASSET>/<key>-seed<S>/), `overrides` are config fields over the base (e.g. the same
   * shape with random weights: { model: 'random:tiny' }).
   */
  llmVariants?: Array<{ name: string; key: string; overrides: Record<string, unknown> }>;
  /**
   * Train the runs in this many child processes at once, each with cores / workers threads (default 1:
   * every run in this process, in turn). Results equal those of runs with the same thread count.
   */
  workers?: number;
  /**
   * Train the runs on a BullMQ queue instead (`reproduce --queue`): every run is a job for `flag-trader
   * worker` processes on any machines (src/pipeline/queue.ts); evaluation and the report stay here.
   */
  queue?: QueueOptions;
  /** Also evaluate each run's untrained initial policy. */
  untrained: boolean;
  /** Rule baselines by registry name (Buy & Hold is always included). */
  baselines: string[];
  extraAgents?: ExtraAgent[];
  bootstrapResamples?: number;
  notes?: string[];
  log?: (message: string) => void;
  /** Called with the update count of a run as it trains (progress display). */
  onUpdate?: (label: string, update: number, numUpdates: number) => void;
}

/** The options the grid helpers below read (every option but the targets). */
export type GridOptions = Omit<ReproduceOptions, 'targets'>;

export interface ReproduceResult {
  summaries: AssetSummary[];
  /** Walk-forward summaries (reproduce --walk-forward); empty otherwise. */
  walkForward: WalkForwardSummary[];
  files: string[];
  backtests: BacktestResult[];
}

function curveOf(dir: string): TrainingPoint[] {
  checkRunFile(dir, RUN_FILES.metrics); // a finished run lists metrics.jsonl in its manifest
  const text = readFileSync(join(dir, RUN_FILES.metrics), 'utf8').trim();
  return text === '' ? [] : text.split('\n').map((l) => JSON.parse(l) as TrainingPoint);
}

function asRun(r: BacktestResult, seed: number | null) {
  return { seed, positions: r.positions, returns: r.returns };
}

/**
 * The report's point-in-time lines for the assets done: one note when every window starts after the
 * model's cutoff, one warning per window that overlaps it. Random models read no text: no line.
 */
export function pointInTimeLines(assets: string[], checks: Map<string, PointInTime>): { notes: string[]; warnings: string[] } {
  const notes: string[] = [], warnings: string[] = [];
  // Windows that start after the cutoff, grouped by model (every target of a reproduction has the same one).
  const clear = new Map<string, { p: PointInTime; starts: string[] }>();
  for (const asset of assets) {
    const p = checks.get(asset);
    if (!p || p.model.startsWith('random:')) continue;
    if (p.text_overlap) { warnings.push(`${asset}: ${describePointInTime(p)}`); continue; }
    const key = JSON.stringify([p.model, p.text_cutoff]);
    const group = clear.get(key) ?? { p, starts: [] };
    group.starts.push(`${asset} ${p.test_start ?? 'n/a'}`);
    clear.set(key, group);
  }
  for (const { p, starts } of clear.values()) {
    notes.push(p.text_cutoff === null
      ? `Point-in-time: model ${p.model} records no text cutoff (no text_cutoff in its flag_trader.json); test windows not checked.`
      : `Point-in-time: model ${p.model} text cutoff ${p.text_cutoff}; every test window starts after it (${starts.join(', ')}).`);
  }
  return { notes, warnings };
}

/** Buy & Hold first, then the other rule baselines (without a second Buy & Hold). */
function baselineNames(opts: GridOptions): string[] {
  return ['buy-and-hold', ...opts.baselines.filter((b) => b !== 'buy-and-hold')];
}

/** A target's training config for one policy and seed: the base, then the target's data and windows. */
export function targetConfig(opts: Pick<ReproduceOptions, 'base'>, target: ReproduceTarget, policy: 'llm' | 'mlp', seed: number): TrainConfig {
  return parseTrainConfig({
    ...opts.base,
    policy, seed, data: target.data, format: target.format,
    ...(target.ticker != null && { ticker: target.ticker }),
    ...(target.priceColumn != null && { price_column: target.priceColumn }),
    ...(target.train && { train_start: target.train.start, train_end: target.train.end }),
    ...(target.test && { test_start: target.test.start, test_end: target.test.end }),
  }, `reproduce ${target.asset}${target.group ? ` ${target.group}` : ''} ${policy} seed ${seed}`);
}

/**
 * Every training run of a target, as plain run descriptions: per seed the LLM policy, the LLM variants
 * and the MLP ablation (when enabled), in that order.
 */
export function targetRunSpecs(opts: GridOptions, target: ReproduceTarget): RunSpec[] {
  const window = target.group && target.train && target.test ? { train: { ...target.train }, test: { ...target.test } } : null;
  const spec = (policy: string, seed: number, config: TrainConfig): RunSpec => ({
    id: runId(target.asset, target.group, policy, seed), asset: target.asset, policy, seed, window, config,
  });
  const specs: RunSpec[] = [];
  for (const seed of opts.seeds) {
    const llm = targetConfig(opts, target, 'llm', seed);
    specs.push(spec('llm', seed, llm));
    for (const v of opts.llmVariants ?? []) {
      specs.push(spec(v.key, seed, parseTrainConfig({ ...llm, ...v.overrides }, `reproduce ${target.asset} ${v.key} seed ${seed}`)));
    }
    if (opts.mlpAblation) specs.push(spec('mlp', seed, targetConfig(opts, target, 'mlp', seed)));
  }
  return specs;
}

/**
 * Train every run of a grid before the evaluation: on the queue when one is given (trainOnQueue), else
 * in parallel worker processes (trainGridInParallel; nothing to do with one worker).
 */
export async function trainGrid(opts: GridOptions, specs: RunSpec[]): Promise<void> {
  if (opts.queue) {
    if ((opts.workers ?? 1) > 1) throw new Error('--workers trains here; with --queue the runs train on `flag-trader worker` processes: give one or the other');
    await trainOnQueue(specs, opts.out, opts.queue, opts.log);
    return;
  }
  await trainGridInParallel(opts, specs);
}

/**
 * Train every run of a grid in `workers` child processes at once (the LLM runs, the longest, first),
 * each with cores / workers threads. Nothing to do with one worker: the runs then train in this
 * process, target by target (trainTarget).
 */
export async function trainGridInParallel(opts: GridOptions, specs: RunSpec[]): Promise<void> {
  const workers = opts.workers ?? 1;
  if (workers <= 1) return;
  const threads = Math.max(1, Math.floor(availableParallelism() / workers));
  const ordered = [...specs.filter((s) => s.config.policy === 'llm'), ...specs.filter((s) => s.config.policy !== 'llm')];
  (opts.log ?? (() => {}))(`training ${ordered.length} runs in ${workers} worker processes (${threads} thread(s) each)`);
  await trainInParallel(ordered.map((s) => trainJobOf(s, opts.out, { ...s.config, threads })), workers, opts.log);
}

/** Train (or resume, or reuse) a target's runs in this process, through the same job code as the workers. */
export async function trainTarget(opts: GridOptions, specs: RunSpec[]): Promise<void> {
  for (const s of specs) {
    const job = trainJobOf(s, opts.out);
    await runTrainJob(job, { ...(opts.log && { log: opts.log }), onUpdate: (m) => opts.onUpdate?.(job.label, m.update, 0) });
  }
}

/** What evaluating one target gives: its report section, its backtests and its runs' training curves. */
export interface TargetResult {
  asset: AssetResult;
  backtests: BacktestResult[];
  training: TrainingCurve[];
}

/**
 * Evaluate a target's trained runs (greedy, on the test window; each untrained policy too when asked)
 * and run Buy & Hold, the rule baselines and the extra agents on exactly the same series and window.
 * `curveLabel` names the training curves (default: the asset).
 */
export async function evaluateTarget(opts: GridOptions, target: ReproduceTarget, curveLabel = target.asset): Promise<TargetResult> {
  const log = opts.log ?? (() => {});
  const dirOf = (policy: string, seed: number) => runDir(opts.out, runId(target.asset, target.group, policy, seed));
  const backtests: BacktestResult[] = [];
  const training: TrainingCurve[] = [];
  const trained: AgentResult = { name: 'flag-trader (PPO LLM)', kind: 'trained', runs: [] };
  const untrained: AgentResult = { name: 'LLM policy, untrained', kind: 'baseline', runs: [] };
  const mlp: AgentResult = { name: 'PPO MLP (ablation)', kind: 'trained', runs: [] };
  const variants = (opts.llmVariants ?? []).map((v) => ({ ...v, result: { name: v.name, kind: 'trained', runs: [] } as AgentResult }));
  let window: BacktestResult | undefined;
  for (const seed of opts.seeds) {
    const dir = dirOf('llm', seed);
    const [r] = await evaluateRun({ run: dir, baselines: [], annualization: target.annualization, log });
    trained.runs.push(asRun(r!, seed));
    backtests.push({ ...r!, agent: `${trained.name} seed ${seed}` });
    window ??= r;
    training.push({ asset: curveLabel, seed, points: curveOf(dir) });
    if (opts.untrained) {
      const [u] = await evaluateRun({ run: dir, baselines: [], annualization: target.annualization, weights: 'initial' });
      untrained.runs.push(asRun(u!, seed));
    }
    for (const v of variants) {
      const [m] = await evaluateRun({ run: dirOf(v.key, seed), baselines: [], annualization: target.annualization, log });
      v.result.runs.push(asRun(m!, seed));
      backtests.push({ ...m!, agent: `${v.name} seed ${seed}` });
    }
    if (opts.mlpAblation) {
      const [m] = await evaluateRun({ run: dirOf('mlp', seed), baselines: [], annualization: target.annualization });
      mlp.runs.push(asRun(m!, seed));
      backtests.push({ ...m!, agent: `${mlp.name} seed ${seed}` });
    }
  }

  // Baselines and zero-shot agents on exactly the same series and test window.
  const runConfig = readRunRecord(dirOf('llm', opts.seeds[0]!)).config;
  const { series } = await loadRunSeries(runConfig);
  const w = testWindow(series, runConfig);
  const common = {
    start: w.start, end: w.end, mode: runConfig.mode, costBps: runConfig.cost_bps, lookback: runConfig.lookback,
    feeBps: runConfig.fee_bps, allowShort: runConfig.allow_short, annualization: target.annualization,
  };
  const others: AgentResult[] = [];
  for (const name of baselineNames(opts)) {
    const r = await backtest(series, createAgent(name, { seed: 0 }), common);
    backtests.push(r);
    others.push({ name, kind: 'baseline', runs: [asRun(r, null)] });
  }
  for (const extra of opts.extraAgents ?? []) {
    log(`${curveLabel}: ${extra.name}`);
    const r = await backtest(series, extra.create({ mode: runConfig.mode, allowShort: runConfig.allow_short }), common);
    backtests.push(r);
    others.push({ name: extra.name, kind: extra.kind, runs: [asRun(r, null)] });
  }
  const bh = others[0]!;
  const agents = [bh, trained, ...variants.map((v) => v.result), ...(opts.mlpAblation ? [mlp] : []), ...(opts.untrained ? [untrained] : []), ...others.slice(1)];
  const dates = window!.dates;
  const i0 = series.dates.indexOf(dates[0]!);
  return {
    asset: {
      asset: target.asset, dates, prices: Array.from(series.prices.subarray(i0, i0 + dates.length)),
      annualization: target.annualization,
      ...(target.train && { trainWindow: target.train }),
      agents,
    },
    backtests, training,
  };
}

/** results.json: every backtest's window, metrics, positions and daily returns. */
export function writeResults(out: string, backtests: BacktestResult[]): void {
  writeFileAtomic(join(out, 'results.json'), JSON.stringify(backtests.map((b) => ({
    agent: b.agent, asset: b.asset, start: b.start, end: b.end, prices: b.prices, metrics: b.metrics,
    positions: b.positions, returns: b.returns,
  }))));
}

export async function reproduce(opts: ReproduceOptions): Promise<ReproduceResult> {
  if (opts.seeds.length === 0) throw new Error('reproduce: at least one seed is needed');
  const log = opts.log ?? (() => {});
  const assets: AssetResult[] = [];
  const training: TrainingCurve[] = [];
  const backtests: BacktestResult[] = [];
  let written: { summaries: AssetSummary[]; walkForward: WalkForwardSummary[]; files: string[] } = { summaries: [], walkForward: [], files: [] };

  // Every target's test window against the model's text cutoff, before the first run trains (the
  // window and model do not depend on the seed).
  const pointInTime = new Map<string, PointInTime>();
  for (const target of opts.targets) {
    const c = targetConfig(opts, target, 'llm', opts.seeds[0]!);
    const { series } = await loadRunSeries(c);
    let p: PointInTime | null;
    try { p = await runPointInTime(c, series); } catch (e) { throw new Error(`reproduce ${target.asset}: ${(e as Error).message}`); }
    if (p) pointInTime.set(target.asset, p);
  }

  // With several workers or a queue, every run of the grid first; the loop below then finds them
  // finished and only evaluates.
  const specs = new Map(opts.targets.map((t) => [t, targetRunSpecs(opts, t)] as const));
  await trainGrid(opts, [...specs.values()].flat());

  for (const target of opts.targets) {
    await trainTarget(opts, specs.get(target)!);
    const r = await evaluateTarget(opts, target);
    assets.push(r.asset);
    training.push(...r.training);
    backtests.push(...r.backtests);

    // Rewrite the report after every asset: a stop later on keeps what is finished.
    const pit = pointInTimeLines(assets.map((a) => a.asset), pointInTime);
    const input: ReportInput = {
      title: opts.title,
      notes: [
        ...(opts.notes ?? []),
        `seeds ${opts.seeds.join(', ')}; assets ${assets.map((a) => a.asset).join(', ')}`,
        ...opts.targets.filter((t) => t.note && assets.some((a) => a.asset === t.asset)).map((t) => `${t.asset}: ${t.note}`),
        ...pit.notes,
      ],
      ...(pit.warnings.length > 0 && { warnings: pit.warnings }),
      assets, training, bootstrapSeed: 0, bootstrapResamples: opts.bootstrapResamples ?? 2000,
    };
    written = writeReport(opts.out, input);
    writeResults(opts.out, backtests);
    log(`${target.asset}: done; report in ${opts.out}`);
  }
  return { ...written, backtests };
}
