// Training runs in tests: a small MLP run's config, a temporary folder per test, metrics without their
// timing fields, and tensors as plain arrays.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTrainConfig, type TrainConfig } from '../src/rl/config.js';
import { RUN_FILES } from '../src/rl/run.js';
import { TIMING_FIELDS } from '../src/rl/ppo.js';
import { readSafetensors } from '../src/model/safetensors.js';

/** metrics.jsonl of a run, one object per line, with the (machine-dependent) timing fields removed. */
export function metricsOf(dir: string): Array<Record<string, unknown>> {
  return readFileSync(join(dir, RUN_FILES.metrics), 'utf8').trim().split('\n').map((l) => {
    const o = JSON.parse(l) as Record<string, unknown>;
    for (const f of TIMING_FIELDS) { assert.ok(f in o, `${f} missing`); delete o[f]; }
    return o;
  });
}

/** Every tensor of a safetensors file, by name, as a plain number array (for deepEqual). */
export function tensorsOf(path: string): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [name, t] of readSafetensors(path).tensors) out[name] = Array.from(t.data);
  return out;
}

/** 6 updates of 2 environments x 20 steps, 2 epochs of minibatches 16 (+ 8) in micro-batches of 4; a checkpoint every 2. */
export const SMALL_RUN = {
  policy: 'mlp', synthetic_days: 300, num_envs: 2, num_steps: 20, total_timesteps: 240, minibatch_size: 16,
  gradient_accumulation_steps: 4, update_epochs: 2, checkpoint_every: 2, mlp_hidden: [16, 16],
};

/** SMALL_RUN with some fields changed. */
export function smallRunConfig(over: Record<string, unknown> = {}): TrainConfig {
  return parseTrainConfig({ ...SMALL_RUN, ...over }, 'test');
}

/** A test body that gets a fresh temporary folder (prefix `prefix`), removed afterwards. */
export function withTmp(prefix: string, fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    try { await fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
  };
}
