/**
 * Training benchmark: the whole PPO loop (rollout with prompt rendering, tokenization, frozen layers
 * and prefix cache; reference log-probs; minibatch forward+backward; AdamW) at the paper's PPO
 * settings (src/rl/config.ts defaults: 40 rollout steps, minibatch 32 in 8 micro-batches, 1 epoch) on
 * the SmolLM2-135M shape with random weights and 4 trainable layers.
 *
 * It runs `--updates` updates (default 3) of PpoTrainer, the loop runTraining drives (without its
 * metrics file and checkpoints, which cost ~1 ms a step), timing each phase with a Profiler attached
 * to the trainer and the policy. The first update is reported apart as the warm-up (the prefix cache
 * starts cold); the others give medians: environment steps per second, the projected time of a whole
 * run, the mean prompt length T, and where the time of a step goes. `--compare` also trains a second
 * policy with the caches off (LlmPolicyOptions.caches), update for update in turn with the first, so that both
 * see the same machine state: the ratio of the two is the speedup.
 *
 * Run: node --import tsx bench/train.ts [--json] [--updates N] [--threads N] [--model SPEC] [--data PATH]
 *        [--tokenizer PATH] [--prompt-style full|compact] [--prompt-max-tokens N] [--prefix-cache-mb N] [--compare] ...
 * (also `flag-trader bench-train`; both take the options of trainBenchCommand).
 */
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { backendInfo, getBackend } from '../src/kernels/index.js';
import { DEFAULT_TRAINABLE_LAYERS } from '../src/model/llama.js';
import { PAPER_PPO, parseTrainConfig, runShape, type TrainConfig } from '../src/rl/config.js';
import { loadRunSeries, trainWindow } from '../src/rl/data.js';
import type { LlmPolicy } from '../src/rl/llm-policy.js';
import { createLlmPolicy } from '../src/rl/policies.js';
import { PpoTrainer } from '../src/rl/ppo.js';
import { makeTrainEnvs } from '../src/rl/run.js';
import { Profiler, type ProfileSnapshot } from '../src/util/profile.js';
import type { Backend } from '../src/kernels/backend.js';
import type { LlamaConfig } from '../src/model/config.js';
import { countFlops, type FlopCounter } from './flops.js';
import { positiveInt, STDIO, type CommandIo } from '../src/util/options.js';

/** The settings a run of the training benchmark takes when not given (options and flags alike). */
export const TRAIN_BENCH_DEFAULTS = {
  model: 'random:smollm2-135m',
  /** The first is the warm-up; at least 2. */
  updates: 3,
  threads: 2,
  /** The training window of a data file: the INVESTOR-BENCH equities'. */
  trainStart: '2020-07-01',
  trainEnd: '2020-09-30',
  trainableLayers: DEFAULT_TRAINABLE_LAYERS,
} as const;

/** Fields marked (D) default to TRAIN_BENCH_DEFAULTS. */
export interface TrainBenchOptions {
  /** Model spec (D). */
  model?: string;
  /** Updates to run, the first being the warm-up (D, at least 2). */
  updates?: number;
  /** Compute threads (D). */
  threads?: number;
  /** Market data file (e.g. INVESTOR-BENCH msft.json); default the built-in synthetic market. */
  data?: string;
  /** Training window of a data file (D). */
  trainStart?: string;
  trainEnd?: string;
  /** tokenizer.json (e.g. SmolLM2's); default the built-in byte tokenizer (T is then in bytes). */
  tokenizer?: string;
  /** Default: full with a tokenizer file, compact with the byte tokenizer. */
  promptStyle?: 'full' | 'compact';
  /** Prompt budget in tokens; default 768 with a tokenizer file, 512 with the byte tokenizer. */
  promptMaxTokens?: number;
  /** Trainable top layers (D). */
  trainableLayers?: number;
  /** Frozen-prefix cache in MiB (default: the config's prefix_cache_mb). */
  prefixCacheMb?: number;
  /** Also run the plain computation (caches off), interleaved update by update. */
  compare?: boolean;
  log?: (line: string) => void;
}

/** Phases of a step, in report order (Profiler names; see LlmPolicy and PpoTrainer). */
export const STEP_PHASES = [
  ['prompt', 'prompt rendering + chat template'],
  ['tokenize', 'tokenization (budget counts, prompt, marks)'],
  ['frozen', 'frozen layers (prefix-cached)'],
  ['rollout_forward', 'rollout forward (top K + heads)'],
  ['reference', 'reference log-probs'],
  ['update_forward', 'update forward (top K + heads)'],
  ['update_backward', 'update backward'],
  ['optimizer', 'optimizer (zero, clip, AdamW)'],
  ['rollout', 'rollout rest (env, sampling)'],
  ['update', 'update rest (loss terms)'],
  ['other', 'other'],
] as const;
export type StepPhase = (typeof STEP_PHASES)[number][0];

export interface UpdateRecord {
  update: number;
  seconds: number;
  steps: number;
  stepsPerSec: number;
  /** Mean prompt tokens over the prompts this update encoded. */
  meanT: number;
  prompts: number;
  /** Per environment step: frozen-layer tokens computed and taken from the prefix cache. */
  frozenComputedPerStep: number;
  frozenCachedPerStep: number;
  /** Per environment step: tokens run through the top K layers by rollout forwards, the reference and the update. */
  rolloutTokensPerStep: number;
  referenceTokensPerStep: number;
  updateTokensPerStep: number;
  /** Seconds per environment step by phase (`other` = the wall time no phase covers). */
  perStep: Record<StepPhase, number>;
  /** Matrix-product GFLOP per environment step by phase (bench/flops.ts; `other` = outside every phase). */
  gflopPerStep: Record<StepPhase, number>;
}

export interface VariantResult {
  label: string;
  /** LlmPolicyOptions.caches of this variant. */
  caches: boolean;
  warmup: UpdateRecord;
  updates: UpdateRecord[];
  /** Medians over the updates after the warm-up. */
  median: Omit<UpdateRecord, 'update' | 'prompts'>;
  /** Steps of a run at the config's total_timesteps (num_updates * batch) and its projected hours. */
  projectedRun: { steps: number; hours: number };
}

export interface TrainBenchResult {
  model: string;
  backend: string;
  /** The kernels: the BLAS build and OpenBLAS core (backendInfo), which set the sgemm rate. */
  blas: string;
  threads: number;
  trainableLayers: number;
  data: string;
  trainWindow: { start: string; end: string; days: number };
  tokenizer: string;
  tokenUnit: 'tokens' | 'bytes';
  prompt: { style: string; maxTokens: number };
  ppo: { numSteps: number; numEnvs: number; minibatch: number; microBatch: number; epochs: number; optimizerStepsPerUpdate: number };
  variants: VariantResult[];
  /** Steady-state steps/s with the caches relative to the plain computation (with --compare). */
  speedup: number | null;
  /**
   * The backend's sgemm rate in this run: the decoder layer's four forward products at T = 300 rows
   * (q/o, k/v, gate/up, down), GFLOP/s of their summed median times, measured before the first update
   * and after the last (`gflops` is the mean of the two). Each phase's fraction of it is in the report.
   */
  sgemm: { before: number; after: number; gflops: number };
  /**
   * Steady-state steps/s of the first variant per 100 GFLOP/s of that sgemm rate: the speed relative to
   * this machine's sgemm (it still depends on memory bandwidth and on small-row shapes that the sgemm
   * reference does not represent, and a load that changes during the run moves it).
   */
  stepsPerSecPer100Gflops: number;
  peakRssMB: number;
  prefixCache: { entries: number; mb: number; limitMb: number; hits: number; misses: number; evictions: number };
  /**
   * The rollout's kept activations (rollout_cache_mb) of the first variant: the most they held at the end
   * of a rollout, their limit, and the samples kept and taken by first minibatches over the run.
   */
  rolloutCache: { peakMb: number; limitMb: number; kept: number; taken: number };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Variant {
  label: string;
  /** LlmPolicyOptions.caches of this variant. */
  caches: boolean;
  policy: LlmPolicy;
  trainer: PpoTrainer<unknown>;
  profiler: Profiler;
  flops: FlopCounter;
  records: UpdateRecord[];
}

function benchConfig(o: TrainBenchOptions): TrainConfig {
  const d = TRAIN_BENCH_DEFAULTS;
  const hasTokenizer = o.tokenizer !== undefined;
  // The paper's setting (its PPO values and the LM head at the last position), as configs/paper-smollm2.yaml.
  return parseTrainConfig({
    ...PAPER_PPO, policy_head: 'lm', head_input: 'last',
    policy: 'llm', model: o.model ?? d.model, trainable_layers: o.trainableLayers ?? d.trainableLayers, threads: o.threads ?? d.threads,
    prompt_style: o.promptStyle ?? (hasTokenizer ? 'full' : 'compact'),
    prompt_max_tokens: o.promptMaxTokens ?? (hasTokenizer ? 768 : 512),
    ...(hasTokenizer && { tokenizer: o.tokenizer }),
    ...(o.prefixCacheMb !== undefined && { prefix_cache_mb: o.prefixCacheMb }),
    ...(o.data !== undefined && { data: o.data, train_start: o.trainStart ?? d.trainStart, train_end: o.trainEnd ?? d.trainEnd }),
  }, 'bench-train options');
}

function record(v: Variant, update: number, seconds: number, steps: number, d: ProfileSnapshot, frozen: { computed: number; reused: number },
  flops: Record<string, number>): UpdateRecord {
  const perStep = {} as Record<StepPhase, number>;
  const gflopPerStep = {} as Record<StepPhase, number>;
  let covered = 0;
  for (const [name] of STEP_PHASES) {
    gflopPerStep[name] = (flops[name === 'other' ? 'none' : name] ?? 0) / steps / 1e9;
    if (name === 'other') continue;
    const s = d.phases[name]?.seconds ?? 0;
    perStep[name] = s / steps;
    covered += s;
  }
  perStep.other = Math.max(0, seconds - covered) / steps;
  const c = (k: string) => d.counters[k] ?? 0;
  return {
    update, seconds, steps, stepsPerSec: steps / seconds,
    meanT: c('prompts') > 0 ? c('prompt_tokens') / c('prompts') : 0, prompts: c('prompts'),
    frozenComputedPerStep: frozen.computed / steps, frozenCachedPerStep: frozen.reused / steps,
    rolloutTokensPerStep: c('rollout_tokens') / steps, referenceTokensPerStep: c('reference_tokens') / steps,
    updateTokensPerStep: c('update_tokens') / steps,
    perStep, gflopPerStep,
  };
}

function summarise(v: Variant, cfg: TrainConfig): VariantResult {
  const [warmup, ...rest] = v.records;
  const med = (f: (r: UpdateRecord) => number) => median(rest.map(f));
  const perStep = {} as Record<StepPhase, number>;
  const gflopPerStep = {} as Record<StepPhase, number>;
  for (const [name] of STEP_PHASES) {
    perStep[name] = med((r) => r.perStep[name]);
    gflopPerStep[name] = med((r) => r.gflopPerStep[name]);
  }
  const sps = med((r) => r.stepsPerSec);
  const shape = runShape(cfg);
  const steps = shape.numUpdates * shape.batchSize;
  return {
    label: v.label, caches: v.caches, warmup: warmup!, updates: rest,
    median: {
      seconds: med((r) => r.seconds), steps: med((r) => r.steps), stepsPerSec: sps, meanT: med((r) => r.meanT),
      frozenComputedPerStep: med((r) => r.frozenComputedPerStep), frozenCachedPerStep: med((r) => r.frozenCachedPerStep),
      rolloutTokensPerStep: med((r) => r.rolloutTokensPerStep), referenceTokensPerStep: med((r) => r.referenceTokensPerStep),
      updateTokensPerStep: med((r) => r.updateTokensPerStep),
      perStep, gflopPerStep,
    },
    projectedRun: { steps, hours: steps / sps / 3600 },
  };
}

/** Rows of the sgemm reference (the issue's and bench/kernels.ts's prompt-like length). */
const SGEMM_ROWS = 300;

/**
 * GFLOP/s of the decoder layer's four forward products x W^T at SGEMM_ROWS rows (q/o, k/v, gate/up,
 * down): their FLOPs over the sum of each one's median time of 15 runs.
 */
export function layerSgemmGflops(be: Backend, c: LlamaConfig): number {
  const C = c.hidden_size, F = c.intermediate_size, HD = c.num_attention_heads * c.head_dim, KVD = c.num_key_value_heads * c.head_dim;
  const T = SGEMM_ROWS;
  let flops = 0, seconds = 0;
  for (const [inF, outF] of [[C, HD], [C, KVD], [C, F], [F, C]] as const) {
    const x = new Float32Array(T * inF).map((_, i) => ((i * 7) % 13) / 13 - 0.5);
    const w = new Float32Array(outF * inF).map((_, i) => ((i * 5) % 11) / 11 - 0.5);
    const y = new Float32Array(T * outF);
    const times: number[] = [];
    for (let r = 0; r < 16; r++) {
      const t0 = performance.now();
      be.sgemm(false, true, T, outF, inF, 1, x, inF, w, inF, 0, y, outF);
      if (r > 0) times.push((performance.now() - t0) / 1000); // the first run warms up
    }
    flops += 2 * T * inF * outF;
    seconds += median(times);
  }
  return flops / seconds / 1e9;
}

export async function runTrainBench(o: TrainBenchOptions = {}): Promise<TrainBenchResult> {
  const log = o.log ?? (() => {});
  const updates = o.updates ?? TRAIN_BENCH_DEFAULTS.updates;
  if (!Number.isInteger(updates) || updates < 2) throw new Error(`--updates must be an integer >= 2 (the first is the warm-up), got ${updates}`);
  const cfg = benchConfig(o);
  const { series } = await loadRunSeries(cfg);
  const window = trainWindow(series, cfg);
  const shape = runShape(cfg);
  const variants: Variant[] = [];
  const be = getBackend();
  for (const [label, caches] of [['speedups', true], ...(o.compare ? [['plain', false]] : [])] as Array<[string, boolean]>) {
    const profiler = new Profiler();
    const flops = countFlops(be, () => profiler.current());
    const policy = await createLlmPolicy(cfg, { caches, backend: flops.backend });
    const trainer = new PpoTrainer<unknown>(policy as never, makeTrainEnvs(series, window, cfg), cfg);
    trainer.attachProfiler(profiler);
    variants.push({ label, caches, policy, trainer, profiler, flops, records: [] });
  }
  const sgemmBefore = layerSgemmGflops(be, variants[0]!.policy.model.config);
  const first = variants[0]!.policy;
  log(`backend ${be.name}, ${be.getThreads()} threads; ${cfg.model} (${first.tokenizer.kind} tokenizer), top ${cfg.trainable_layers} trainable; ` +
    `${series.asset} ${window.start}..${window.end}; prompt ${cfg.prompt_style}, budget ${cfg.prompt_max_tokens}`);
  for (let u = 1; u <= updates; u++) {
    // Alternate which variant goes first, so that a slow spell of the machine hits both alike.
    const order = u % 2 === 1 ? variants : [...variants].reverse();
    for (const v of order) {
      const before = v.profiler.snapshot();
      const flops0 = v.flops.totals();
      const f0 = v.policy.cacheStats();
      const t0 = performance.now();
      v.trainer.runUpdate();
      const seconds = (performance.now() - t0) / 1000;
      const f1 = v.policy.cacheStats();
      const flops1 = v.flops.totals();
      const r = record(v, u, seconds, shape.batchSize, v.profiler.since(before),
        { computed: f1.frozenComputed - f0.frozenComputed, reused: f1.frozenReused - f0.frozenReused },
        Object.fromEntries(Object.entries(flops1).map(([k, f]) => [k, f - (flops0[k] ?? 0)])));
      v.records.push(r);
      log(`${v.label} update ${u}${u === 1 ? ' (warm-up)' : ''}: ${seconds.toFixed(1)} s, ${r.stepsPerSec.toFixed(2)} steps/s, mean T ${r.meanT.toFixed(0)}, ` +
        `frozen ${r.frozenComputedPerStep.toFixed(0)} computed + ${r.frozenCachedPerStep.toFixed(0)} cached tokens/step`);
    }
  }
  const results = variants.map((v) => summarise(v, cfg));
  const sgemmAfter = layerSgemmGflops(be, first.model.config);
  const sgemm = { before: sgemmBefore, after: sgemmAfter, gflops: (sgemmBefore + sgemmAfter) / 2 };
  log(`sgemm (layer products at T=300): ${sgemmBefore.toFixed(1)} GFLOP/s before, ${sgemmAfter.toFixed(1)} after`);
  const pc = first.model.prefixCache.stats();
  const ra = first.rolloutActivationCounts();
  return {
    model: cfg.model, backend: be.name, blas: backendInfo(be), threads: be.getThreads(), trainableLayers: cfg.trainable_layers,
    data: cfg.data, trainWindow: { start: window.start, end: window.end, days: window.endIndex - window.startIndex + 1 },
    tokenizer: cfg.tokenizer ?? 'built-in bytes', tokenUnit: first.tokenizer.kind === 'bytes' ? 'bytes' : 'tokens',
    prompt: { style: cfg.prompt_style, maxTokens: cfg.prompt_max_tokens! },
    ppo: {
      numSteps: cfg.num_steps, numEnvs: cfg.num_envs, minibatch: cfg.minibatch_size, microBatch: shape.microBatchSize,
      epochs: cfg.update_epochs, optimizerStepsPerUpdate: shape.minibatchesPerEpoch * cfg.update_epochs,
    },
    variants: results,
    speedup: results.length > 1 ? results[0]!.median.stepsPerSec / results[1]!.median.stepsPerSec : null,
    sgemm, stepsPerSecPer100Gflops: results[0]!.median.stepsPerSec / (sgemm.gflops / 100),
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    prefixCache: { entries: pc.entries, mb: pc.bytes / 2 ** 20, limitMb: pc.limitBytes / 2 ** 20, hits: pc.hits, misses: pc.misses, evictions: pc.evictions },
    rolloutCache: { peakMb: ra.peakBytes / 2 ** 20, limitMb: cfg.rollout_cache_mb, kept: ra.kept, taken: ra.taken },
  };
}

export function formatTrainBench(r: TrainBenchResult): string {
  const unit = r.tokenUnit;
  const L: string[] = [];
  L.push(`PPO training benchmark: ${r.model}${r.model.startsWith('random:') ? ' (random weights)' : ''}, top ${r.trainableLayers} layers trainable, backend ${r.backend}, ${r.threads} threads`);
  L.push(`kernels: ${r.blas}`);
  L.push(`data ${r.data}, training window ${r.trainWindow.start}..${r.trainWindow.end} (${r.trainWindow.days} days); tokenizer ${r.tokenizer}` +
    (unit === 'bytes' ? ' (T is in BYTES)' : ''));
  L.push(`prompt ${r.prompt.style}, budget ${r.prompt.maxTokens} ${unit}; PPO ${r.ppo.numSteps} steps x ${r.ppo.numEnvs} env per update, ` +
    `minibatch ${r.ppo.minibatch} (micro-batches of ${r.ppo.microBatch}), ${r.ppo.epochs} epoch = ${r.ppo.optimizerStepsPerUpdate} optimizer steps per update`);
  L.push('');
  const cols: Array<[string, (v: VariantResult) => UpdateRecord | VariantResult['median']]> = [];
  for (const v of r.variants) {
    const n = v.updates.length;
    cols.push([`${v.label}: warm-up`, () => v.warmup]);
    cols.push([`${v.label}: median of ${n}`, () => v.median]);
  }
  const w = 22;
  const head = ''.padEnd(46) + cols.map(([h]) => h.padStart(w)).join('');
  L.push(head);
  const vOf = (i: number) => r.variants[Math.floor(i / 2)]!;
  const row = (name: string, f: (x: UpdateRecord | VariantResult['median']) => string) =>
    L.push(name.padEnd(46) + cols.map(([, g], i) => f(g(vOf(i))).padStart(w)).join(''));
  row('env steps/s (rollout + update)', (x) => x.stepsPerSec.toFixed(3));
  row('seconds per step', (x) => (1 / x.stepsPerSec).toFixed(3));
  row(`mean prompt length T (${unit})`, (x) => x.meanT.toFixed(0));
  row(`frozen ${unit} computed / cached per step`, (x) => `${x.frozenComputedPerStep.toFixed(0)} / ${x.frozenCachedPerStep.toFixed(0)}`);
  row(`top-K ${unit}/step: rollout/reference/update`, (x) => `${x.rolloutTokensPerStep.toFixed(0)} / ${x.referenceTokensPerStep.toFixed(0)} / ${x.updateTokensPerStep.toFixed(0)}`);
  L.push('where the time goes, ms per step:');
  for (const [k, label] of STEP_PHASES) row(`  ${label}`, (x) => (1000 * x.perStep[k]).toFixed(1));
  L.push('');
  L.push(`matrix products per step (${r.variants[0]!.label}, median of ${r.variants[0]!.updates.length}) against sgemm ${r.sgemm.gflops.toFixed(1)} GFLOP/s measured in this run ` +
    `(before ${r.sgemm.before.toFixed(1)}, after ${r.sgemm.after.toFixed(1)}):`);
  L.push(`${'  phase'.padEnd(46)}${'GFLOP'.padStart(10)}${'ms'.padStart(10)}${'GFLOP/s'.padStart(10)}${'of sgemm'.padStart(10)}`);
  const m = r.variants[0]!.median;
  let gTotal = 0, sTotal = 0;
  for (const [k, label] of STEP_PHASES) {
    const g = m.gflopPerStep[k], sec = m.perStep[k];
    gTotal += g; sTotal += sec;
    if (g === 0) continue;
    L.push(`${('  ' + label).padEnd(46)}${g.toFixed(2).padStart(10)}${(1000 * sec).toFixed(1).padStart(10)}${(g / sec).toFixed(1).padStart(10)}${`${(100 * g / sec / r.sgemm.gflops).toFixed(0)} %`.padStart(10)}`);
  }
  L.push(`${'  whole step'.padEnd(46)}${gTotal.toFixed(2).padStart(10)}${(1000 * sTotal).toFixed(1).padStart(10)}${(gTotal / sTotal).toFixed(1).padStart(10)}${`${(100 * gTotal / sTotal / r.sgemm.gflops).toFixed(0)} %`.padStart(10)}`);
  L.push(`steps/s per 100 GFLOP/s of sgemm: ${r.stepsPerSecPer100Gflops.toFixed(2)} (${m.stepsPerSec.toFixed(3)} steps/s at ${r.sgemm.gflops.toFixed(1)} GFLOP/s)`);
  L.push('');
  for (const v of r.variants) {
    L.push(`${v.label}: projected run of ${v.projectedRun.steps} steps at ${v.median.stepsPerSec.toFixed(3)} steps/s: ${v.projectedRun.hours.toFixed(2)} h`);
  }
  if (r.speedup !== null) L.push(`speedup (steps/s, speedups / plain, same run): ${r.speedup.toFixed(2)}x`);
  L.push(`prefix cache: ${r.prefixCache.entries} entries, ${r.prefixCache.mb.toFixed(0)} of ${r.prefixCache.limitMb.toFixed(0)} MiB, ` +
    `${r.prefixCache.hits} hits, ${r.prefixCache.misses} misses, ${r.prefixCache.evictions} evictions`);
  L.push(`rollout activations kept for the first minibatch: at most ${r.rolloutCache.peakMb.toFixed(0)} of ${r.rolloutCache.limitMb} MiB; ` +
    `${r.rolloutCache.kept} samples kept, ${r.rolloutCache.taken} taken by a first minibatch`);
  L.push(`peak RSS: ${r.peakRssMB.toFixed(0)} MB${r.variants.length > 1 ? ' (both variants in one process)' : ''}`);
  return L.join('\n') + '\n';
}

function promptStyleOption(raw: string): 'full' | 'compact' {
  if (raw !== 'full' && raw !== 'compact') throw new Error(`--prompt-style must be full or compact, got "${raw}"`);
  return raw;
}

/** The benchmark's options and action on `cmd`: `flag-trader bench-train` (src/cli/model.ts) and this script. */
export function trainBenchCommand(cmd: Command, io: CommandIo = STDIO): Command {
  const d = TRAIN_BENCH_DEFAULTS;
  return cmd
    .description('PPO training-loop benchmark at the paper\'s settings on the SmolLM2-135M shape: steps/s, projected run time, where the time goes')
    .option('--updates <n>', 'updates to run; the first is reported apart as the warm-up', positiveInt('--updates'), d.updates)
    .option('--threads <n>', 'threads', positiveInt('--threads'), d.threads)
    .option('--model <spec>', 'model spec', d.model)
    .option('--data <path>', 'market data file (e.g. INVESTOR-BENCH msft.json); default the synthetic market')
    .option('--train-start <date>', 'training window start with --data', d.trainStart)
    .option('--train-end <date>', 'training window end with --data', d.trainEnd)
    .option('--tokenizer <path>', 'tokenizer.json (e.g. SmolLM2\'s); default the byte tokenizer (T in bytes)')
    .option('--prompt-style <style>', 'full or compact (default: full with --tokenizer, compact without)', promptStyleOption)
    .option('--prompt-max-tokens <n>', 'prompt budget (default: 768 with --tokenizer, 512 without)', positiveInt('--prompt-max-tokens'))
    .option('--trainable-layers <k>', 'trainable top layers', positiveInt('--trainable-layers'), d.trainableLayers)
    .option('--prefix-cache-mb <n>', 'frozen-prefix cache in MiB (default: the config\'s prefix_cache_mb)', positiveInt('--prefix-cache-mb'))
    .option('--compare', 'also train with the caches off (the plain computation), update for update in turn, and report the ratio')
    .option('--json', 'print JSON')
    .action(async (o: Omit<TrainBenchOptions, 'log'> & { json?: boolean }) => {
      const { json, ...options } = o;
      const r = await runTrainBench({ ...options, compare: o.compare === true, log: (l) => io.err(`${l}\n`) });
      io.out(json ? JSON.stringify(r, null, 2) + '\n' : formatTrainBench(r));
    });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await trainBenchCommand(new Command('bench/train.ts')).parseAsync();
}
