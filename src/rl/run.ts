/**
 * A training run on disk. The run directory holds:
 *   config.json             the full config, the derived batch numbers, and the run's provenance:
 *                           sha256 of the data, the policy's model fingerprint, the code version;
 *                           point_in_time: the model's text cutoff, the test window start it was
 *                           checked against and whether they overlap (src/rl/point-in-time.ts)
 *   metrics.jsonl           one JSON line per update (UpdateMetrics), appended as each update ends
 *   checkpoint.safetensors  the latest checkpoint (every checkpoint_every updates and after the last)
 *   policy.safetensors      the final trained parameters (written when the run completes)
 *   adapter/                with adapter lora, the final adapter in PEFT's layout (adapter_config.json,
 *                           adapter_model.safetensors), written with policy.safetensors
 *   manifest.json           sha256 and size of config.json, the checkpoint, the policy file and (once the
 *                           run is finished) metrics.jsonl, checked whenever they are loaded
 *                           (src/rl/manifest.ts); config.json's `manifest` field names it
 *   train.lock              while a process trains the run: its pid, host and start time
 *                           (src/rl/run-lock.ts); a second training of the run is refused
 *
 * Runs written before manifests existed load with a warning (their files unverified); resuming one
 * records its files' current digests in a new manifest.
 *
 * Resuming (`resume: true`) rebuilds everything from config.json, checks that the data and model
 * are the ones the run started with, loads the checkpoint (parameters, optimizer, RNG and environment
 * states) and rewrites metrics.jsonl from the checkpoint's copy of its lines, dropping lines of
 * updates after the checkpoint, which are then recomputed identically. A run killed before its
 * first checkpoint restarts from update 0.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MarketSeries } from '../data/series.js';
import { TradingEnv } from '../env/trading-env.js';
import { writeFileAtomic } from '../util/atomic.js';
import { encodeCheckpoint, encodePolicy, loadCheckpoint, loadParamsInto } from './checkpoint.js';
import { parseTrainConfig, runShape, type TrainConfig } from './config.js';
import { loadRunSeries, trainWindow, type DataRecord, type WindowIndices } from './data.js';
import { ManifestWriter, MANIFEST_FILE, readManifest, verifyRunFile, type Manifest } from './manifest.js';
import { createPolicy } from './policies.js';
import { describePointInTime, runPointInTime, type PointInTime } from './point-in-time.js';
import { countParams, savedTensors, type ActorCritic } from './policy.js';
import { PpoTrainer, type UpdateMetrics } from './ppo.js';
import { codeVersion, type CodeVersion } from './provenance.js';
import { RunLock } from './run-lock.js';
import { deriveSeed } from './seeds.js';

export const RUN_FILES = {
  config: 'config.json',
  metrics: 'metrics.jsonl',
  checkpoint: 'checkpoint.safetensors',
  policy: 'policy.safetensors',
  manifest: MANIFEST_FILE,
} as const;

/** The content of config.json. */
export interface RunRecord {
  config: TrainConfig;
  derived: { batch_size: number; num_updates: number; micro_batch_size: number; minibatches_per_epoch: number; unused_timesteps: number };
  train_window: { start: string; end: string; prices: number };
  policy: { kind: string; parameters: number };
  hashes: { data: DataRecord; model: string; code: CodeVersion };
  /** The text-cutoff check of the run's test window; null for policies that read no model. Absent in runs made before the check existed. */
  point_in_time?: PointInTime | null;
  /** The run's manifest file (manifest.json); absent in runs made before manifests existed. */
  manifest?: string;
}

export interface TrainRunOptions {
  /** Run directory. */
  out: string;
  /** The config of a new run (ignored when resuming: the run's config.json is used). */
  config?: TrainConfig;
  /** Continue the run in `out` from its last checkpoint. */
  resume?: boolean;
  /** Stop once this many updates are done in total, as if interrupted (for tests and staged runs). */
  stopAfter?: number;
  /** Called once before the first update of this invocation. */
  onStart?: (info: { record: RunRecord; startUpdate: number }) => void;
  /** Called after each update (after its metrics line is written). */
  onUpdate?: (metrics: UpdateMetrics) => void;
  /** Notes (resume details, code changes), one line each. */
  log?: (message: string) => void;
  /** The queue job this training is for (`<queue>/<job id>`), recorded in train.lock (src/rl/run-lock.ts). */
  lockJob?: string;
}

export interface TrainRunResult {
  out: string;
  record: RunRecord;
  startUpdate: number;
  updatesDone: number;
  /** True when stopped by `stopAfter` before the last update. */
  stopped: boolean;
  /** Metrics of the updates run by this invocation. */
  metrics: UpdateMetrics[];
  seconds: number;
}

/** The training environments: num_envs TradingEnvs over the training window, each with its own start stream. */
export function makeTrainEnvs(series: MarketSeries, window: WindowIndices, c: TrainConfig): TradingEnv[] {
  return Array.from({ length: c.num_envs }, (_, i) => new TradingEnv(series, {
    mode: c.mode,
    lookback: c.lookback,
    maxEpisodeSteps: c.max_episode_steps,
    start: c.start,
    seed: deriveSeed(c.seed, `env-${i}`),
    windowStart: window.startIndex,
    windowEnd: window.endIndex,
    costBps: c.cost_bps,
    feeBps: c.fee_bps,
    allowShort: c.allow_short,
  }));
}

/**
 * Read and validate a run directory's config.json, checked against the run's manifest. A run without
 * a manifest (made before manifests existed) is read with a warning through `log`.
 */
export function readRunRecord(dir: string, log?: (message: string) => void): RunRecord {
  const path = join(dir, RUN_FILES.config);
  if (!existsSync(path)) throw new Error(`${dir} is not a training run: ${path} does not exist`);
  const manifest = readManifest(dir);
  if (manifest) verifyRunFile(dir, RUN_FILES.config, manifest);
  let rec: RunRecord;
  try { rec = JSON.parse(readFileSync(path, 'utf8')) as RunRecord; } catch (e) { throw new Error(`${path}: ${(e as Error).message}`); }
  if (!rec || typeof rec !== 'object' || !rec.config || !rec.hashes) throw new Error(`${path}: expected a run record with "config" and "hashes"`);
  rec.config = parseTrainConfig(rec.config, path);
  if (!manifest) {
    if (rec.manifest !== undefined) {
      throw new Error(`${join(dir, MANIFEST_FILE)} is missing, but ${path} says the run records its files' checksums there: the run directory is incomplete`);
    }
    log?.(`warning: ${dir} has no ${MANIFEST_FILE} (a run from before file checksums were recorded): its files are loaded unverified`);
  }
  return rec;
}

/**
 * Check a file of a run against its manifest before reading it (a no-op for runs without one).
 * Returns false when the file is absent (and the manifest does not say it should exist).
 */
export function checkRunFile(dir: string, name: string, manifest: Manifest | null = readManifest(dir)): boolean {
  if (!manifest) return existsSync(join(dir, name));
  // metrics.jsonl is listed only once the run is finished (it grows during the run).
  return verifyRunFile(dir, name, manifest, { unlisted: name === RUN_FILES.metrics ? 'accept' : 'error' }) !== 'absent';
}

export async function runTraining(opts: TrainRunOptions): Promise<TrainRunResult> {
  const log = opts.log ?? (() => {});
  const out = opts.out;
  const configPath = join(out, RUN_FILES.config);
  // The run's lock, from before its first write to its end (also on errors; 'exit' covers process.exit).
  let lock: RunLock | null = null;
  const releaseLock = () => lock?.release();
  const lockOpts = opts.lockJob !== undefined ? { job: opts.lockJob } : {};
  process.on('exit', releaseLock);
  try {
    let config: TrainConfig;
    let previous: RunRecord | null = null;
    let manifest: Manifest | null = null;
    if (opts.resume) {
      // Taken before anything is read, so that a second training of a running run fails at once.
      if (existsSync(configPath)) lock = RunLock.acquire(out, log, lockOpts);
      previous = readRunRecord(out, log);
      manifest = readManifest(out);
      config = previous.config;
    } else {
      if (!opts.config) throw new Error('runTraining: a config is needed for a new run');
      if (existsSync(configPath)) throw new Error(`${out} already holds a run (${configPath}); resume it with --resume ${out} or choose another --out`);
      config = opts.config;
    }

    const { series, record: data } = await loadRunSeries(config);
    const window = trainWindow(series, config);
    // Before the model is loaded and before any update: a run whose test window its model has read about fails now.
    const pointInTime = await runPointInTime(config, series);
    if (pointInTime?.text_overlap) log(`warning: ${describePointInTime(pointInTime)}`);
    const policy: ActorCritic = await createPolicy(config);
    const shape = runShape(config);
    const record: RunRecord = {
      config,
      derived: {
        batch_size: shape.batchSize, num_updates: shape.numUpdates, micro_batch_size: shape.microBatchSize,
        minibatches_per_epoch: shape.minibatchesPerEpoch, unused_timesteps: shape.unusedTimesteps,
      },
      train_window: { start: window.start, end: window.end, prices: window.endIndex - window.startIndex + 1 },
      policy: { kind: policy.kind, parameters: countParams(policy.params()) },
      hashes: { data, model: policy.fingerprint, code: codeVersion() },
      point_in_time: pointInTime,
      manifest: MANIFEST_FILE,
    };

    const trainer = new PpoTrainer(policy, makeTrainEnvs(series, window, config), config);
    const metricsPath = join(out, RUN_FILES.metrics);
    const checkpointPath = join(out, RUN_FILES.checkpoint);
    let lines: string[] = [];
    let files: ManifestWriter;

    if (previous) {
      if (previous.hashes.data.sha256 !== data.sha256) {
        throw new Error(`cannot resume ${out}: the data changed since the run started (${data.source}: sha256 ${data.sha256}, the run recorded ${previous.hashes.data.sha256})`);
      }
      if (previous.hashes.model !== policy.fingerprint) {
        throw new Error(`cannot resume ${out}: the model changed since the run started (fingerprint ${policy.fingerprint}, the run recorded ${previous.hashes.model})`);
      }
      if (previous.hashes.code.src_sha256 !== record.hashes.code.src_sha256) {
        log(`note: the code under src/ changed since ${out} started; the resumed part may differ from an uninterrupted run`);
      }
      record.hashes.code = previous.hashes.code; // config.json keeps the run's original record
      if (previous.manifest === undefined) delete record.manifest;
      if (checkRunFile(out, RUN_FILES.checkpoint, manifest)) {
        const ckpt = loadCheckpoint(checkpointPath);
        loadParamsInto(savedTensors(policy), ckpt.params, checkpointPath);
        trainer.optimizer.setState(ckpt.optimizer);
        trainer.setState(ckpt.state.trainer);
        lines = ckpt.state.metrics.slice();
        log(`resuming ${out} from update ${trainer.update} of ${trainer.numUpdates}`);
      } else {
        log(`${out} has no checkpoint yet; starting it again from update 0`);
      }
      if (manifest) {
        files = ManifestWriter.continue(out, manifest);
      } else {
        log(`note: ${out}: recording the checksums of its files in ${MANIFEST_FILE} from now on`);
        files = ManifestWriter.adopt(out, [RUN_FILES.config, RUN_FILES.checkpoint, RUN_FILES.policy]);
      }
    } else {
      mkdirSync(out, { recursive: true });
      lock = RunLock.acquire(out, log, lockOpts);
      // Another process may have started a run here while this one was loading.
      if (existsSync(configPath)) throw new Error(`${out} already holds a run (${configPath}); resume it with --resume ${out} or choose another --out`);
      files = ManifestWriter.fresh(out);
      files.write(RUN_FILES.config, Buffer.from(JSON.stringify(record, null, 2) + '\n'));
    }
    // metrics.jsonl = exactly the lines up to the current update; unlisted while it grows.
    files.forget(RUN_FILES.metrics);
    writeFileAtomic(metricsPath, lines.map((l) => l + '\n').join(''));

    const startUpdate = trainer.update;
    opts.onStart?.({ record, startUpdate });
    const t0 = performance.now();
    const metrics: UpdateMetrics[] = [];
    let stopped = false;
    while (!trainer.finished) {
      if (opts.stopAfter !== undefined && trainer.update >= opts.stopAfter) { stopped = true; break; }
      const m = trainer.runUpdate();
      const line = JSON.stringify(m);
      // appendFileSync hands the line to the OS at once: a killed process loses no finished update.
      appendFileSync(metricsPath, line + '\n');
      lines.push(line);
      metrics.push(m);
      if (trainer.update % config.checkpoint_every === 0 || trainer.finished) {
        files.write(RUN_FILES.checkpoint, encodeCheckpoint(checkpointPath, policy.params(), trainer.optimizer.getState(),
          { trainer: trainer.getState(), metrics: lines }, policy.stateTensors?.() ?? []));
      }
      opts.onUpdate?.(m);
    }
    if (trainer.finished) {
      const policyPath = join(out, RUN_FILES.policy);
      files.write(RUN_FILES.policy, encodePolicy(policyPath, savedTensors(policy), { kind: policy.kind, fingerprint: policy.fingerprint, update: trainer.update }));
      // Exports of the final policy (the LoRA adapter in PEFT's layout), listed in the manifest too.
      for (const [name, content] of policy.exportFiles?.() ?? []) files.write(name, typeof content === 'string' ? Buffer.from(content) : content);
      files.record(RUN_FILES.metrics);
    }
    return { out, record, startUpdate, updatesDone: trainer.update, stopped, metrics, seconds: (performance.now() - t0) / 1000 };
  } finally {
    process.off('exit', releaseLock);
    releaseLock();
  }
}
