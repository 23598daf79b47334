/**
 * `reproduce --walk-forward TRAIN:TEST:STEP`: the reproduction's protocol repeated over successive
 * windows of a long price history (src/eval/walk-forward.ts cuts them), so that the policy is judged
 * on many out-of-sample periods instead of one.
 *
 * For each asset and window: the window's runs (the LLM policy per seed, its variants, the MLP
 * ablation) train on the window's training days only, through the same job code as reproduce's runs
 * (src/pipeline/train-pool.ts), and are evaluated greedily on its test days beside Buy & Hold and the
 * rule baselines, exactly as one reproduce target (evaluateTarget). Each run is a RunSpec whose id,
 * and folder, is derived from the asset, the window's bounds, the policy and the seed:
 *   runs/<ASSET>/wf-<trainStart>_<trainEnd>_<testStart>_<testEnd>/<policy>-seed<S>/
 *
 * No window sees data after its own end: training reads only its training window (the environment's
 * window, src/rl/data.ts), and each test decision sees only the days up to it (the trading
 * environment's point-in-time observations). A model's text cutoff is checked against every window's
 * test start before anything trains (src/rl/point-in-time.ts).
 *
 * The report (rewritten after every window) has, per asset, the per-window table and chart and the
 * aggregates over windows (src/report/walk-forward.ts); results.json holds every backtest.
 */
import type { BacktestResult } from '../eval/backtest.js';
import { describeSpec, walkForwardWindows, windowKey, type IndexedRange, type WalkForwardSpec, type WalkForwardWindow } from '../eval/walk-forward.js';
import { loadRunSeries } from '../rl/data.js';
import { runPointInTime, type PointInTime } from '../rl/point-in-time.js';
import { loadModelMeta } from '../model/load.js';
import type { ReportInput, TrainingCurve, WalkForwardResult } from '../report/types.js';
import { writeReport } from '../report/write.js';
import {
  evaluateTarget, pointInTimeLines, targetConfig, targetRunSpecs, trainGrid, trainTarget, writeResults,
  type ReproduceOptions, type ReproduceResult, type ReproduceTarget,
} from './reproduce.js';
import type { RunSpec } from './run-spec.js';

/** An asset of a walk-forward: a reproduce target without windows (they come from the walk). */
export type WalkForwardTarget = Omit<ReproduceTarget, 'train' | 'test' | 'group'>;

export interface WalkForwardOptions extends Omit<ReproduceOptions, 'targets'> {
  targets: WalkForwardTarget[];
  spec: WalkForwardSpec;
  /** Range of dates the windows are cut from (inclusive; default the whole series). */
  from?: string;
  to?: string;
}

export interface WalkForwardAssetPlan {
  target: WalkForwardTarget;
  windows: WalkForwardWindow[];
  /** The dates the windows were cut from, and how many at the end were too few for another window. */
  range: IndexedRange;
  unused: number;
  /** True when the data has no text (news, filings): the LLM reads prices only. */
  pricesOnly: boolean;
  /** One reproduce target per window (its runs in runs/<ASSET>/<window key>/). */
  targets: ReproduceTarget[];
  /** The point-in-time check of each window's test start (null: nothing read, e.g. a random model). */
  pointInTime: Array<PointInTime | null>;
}

export interface WalkForwardPlan {
  assets: WalkForwardAssetPlan[];
  /** Every training run of the walk, in order (asset, window, seed, policy). */
  runs: RunSpec[];
}

/**
 * The windows and runs of a walk-forward, checked before anything trains: each asset's series is read
 * once for its calendar, and every window's test start is checked against the model's text cutoff
 * (a window starting on or before it is refused, naming the window, unless allow_text_overlap).
 */
export async function planWalkForward(opts: WalkForwardOptions): Promise<WalkForwardPlan> {
  if (opts.seeds.length === 0) throw new Error('reproduce --walk-forward: at least one seed is needed');
  const assets: WalkForwardAssetPlan[] = [];
  for (const target of opts.targets) {
    const whole: ReproduceTarget = { ...target, train: null, test: null };
    const { series } = await loadRunSeries(targetConfig(opts, whole, 'llm', opts.seeds[0]!));
    const cut = walkForwardWindows(series.dates, opts.spec, {
      ...(opts.from !== undefined && { from: opts.from }), ...(opts.to !== undefined && { to: opts.to }), label: target.asset,
    });
    const targets = cut.windows.map((w): ReproduceTarget => ({
      ...target, train: { start: w.train.start, end: w.train.end }, test: { start: w.test.start, end: w.test.end }, group: windowKey(w),
    }));
    const pointInTime: Array<PointInTime | null> = [];
    for (const [k, t] of targets.entries()) {
      try {
        pointInTime.push(await runPointInTime(targetConfig(opts, t, 'llm', opts.seeds[0]!), series));
      } catch (e) {
        const w = cut.windows[k]!;
        throw new Error(`reproduce --walk-forward ${target.asset}: window ${k + 1} of ${cut.windows.length} (train ${w.train.start}..${w.train.end}, test ${w.test.start}..${w.test.end}): ${(e as Error).message}${await laterFrom(opts, t, series.dates)}`);
      }
    }
    const pricesOnly = !series.text || series.text.every((day) => day.length === 0);
    assets.push({ target, windows: cut.windows, range: cut.range, unused: cut.unused, pricesOnly, targets, pointInTime });
  }
  return { assets, runs: assets.flatMap((a) => a.targets.flatMap((t) => targetRunSpecs(opts, t))) };
}

/**
 * The hint of a text-cutoff refusal: the first --from whose first test window starts after the model's
 * cutoff (the first test date is TRAIN dates after --from, for rolling and expanding windows alike).
 */
async function laterFrom(opts: WalkForwardOptions, t: ReproduceTarget, dates: readonly string[]): Promise<string> {
  const cutoff = (await loadModelMeta(targetConfig(opts, t, 'llm', opts.seeds[0]!).model).catch(() => null))?.text_cutoff ?? null;
  const i = cutoff === null ? -1 : dates.findIndex((d) => d > cutoff);
  return i >= opts.spec.train
    ? ` (with --walk-forward: --from ${dates[i - opts.spec.train]} or later starts every test window after it)`
    : ' (with --walk-forward: a later --from moves every test window)';
}

/** The report's line describing an asset's walk. */
function walkNote(a: WalkForwardAssetPlan, spec: WalkForwardSpec): string {
  const n = a.windows.length;
  const kind = spec.expanding
    ? `expanding training windows (all from ${a.range.start}, the first ${spec.train} trading days long, each ${spec.step} longer than the one before)`
    : `rolling training windows of ${spec.train} trading days`;
  return `Walk-forward ${a.target.asset} (${describeSpec(spec)}): ${n} window${n === 1 ? '' : 's'} over ${a.range.start}..${a.range.end}, ${kind}, `
    + `each tested on the next ${spec.test} trading days, advancing by ${spec.step}`
    + (a.unused > 0 ? `; the last ${a.unused} day${a.unused === 1 ? '' : 's'} of the range are too few for another whole test window and are left out.` : '.');
}

export async function walkForward(opts: WalkForwardOptions): Promise<ReproduceResult> {
  const log = opts.log ?? (() => {});
  const plan = await planWalkForward(opts);
  await trainGrid(opts, plan.runs);

  const results: WalkForwardResult[] = [];
  const training: TrainingCurve[] = [];
  const backtests: BacktestResult[] = [];
  let written: Omit<ReproduceResult, 'backtests'> = { summaries: [], walkForward: [], files: [] };
  const checks = new Map<string, PointInTime>();
  const checkLabels: string[] = [];
  for (const a of plan.assets) {
    const wf: WalkForwardResult = { asset: a.target.asset, scheme: { ...opts.spec }, annualization: a.target.annualization, windows: [] };
    results.push(wf);
    for (const [k, target] of a.targets.entries()) {
      const label = `${a.target.asset} window ${k + 1}`;
      await trainTarget(opts, targetRunSpecs(opts, target));
      const r = await evaluateTarget(opts, target, label);
      const w = a.windows[k]!;
      wf.windows.push({
        index: w.index, train: { start: w.train.start, end: w.train.end }, test: { start: w.test.start, end: w.test.end },
        dates: r.asset.dates, agents: r.asset.agents,
      });
      training.push(...r.training);
      backtests.push(...r.backtests);
      // The point-in-time lines: the first window (the earliest test start) stands for a clear asset;
      // every window that overlaps the cutoff (allowed) gets a warning of its own.
      const p = a.pointInTime[k];
      if (p && (k === 0 || p.text_overlap)) {
        const key = k === 0 && !p.text_overlap ? a.target.asset : label;
        checks.set(key, p);
        checkLabels.push(key);
      }

      const pit = pointInTimeLines(checkLabels, checks);
      const done = plan.assets.slice(0, results.length);
      const input: ReportInput = {
        title: opts.title,
        notes: [
          ...(opts.notes ?? []),
          ...done.map((d) => walkNote(d, opts.spec)),
          `seeds ${opts.seeds.join(', ')}; each window's value is the mean over seeds`,
          ...done.filter((d) => d.target.note).map((d) => `${d.target.asset}: ${d.target.note}`),
          ...done.filter((d) => d.pricesOnly && !d.target.note).map((d) => `${d.target.asset}: prices only (the data holds no text)`),
          ...pit.notes,
        ],
        ...(pit.warnings.length > 0 && { warnings: pit.warnings }),
        assets: [], walkForward: results, training, bootstrapSeed: 0, bootstrapResamples: opts.bootstrapResamples ?? 2000,
      };
      written = writeReport(opts.out, input);
      writeResults(opts.out, backtests);
      log(`${label} of ${a.windows.length} (test ${w.test.start}..${w.test.end}): done; report in ${opts.out}`);
    }
  }
  return { ...written, backtests };
}
