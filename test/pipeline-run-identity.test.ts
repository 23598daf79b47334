// A run folder is reused or resumed only for the same run: every setting that changes what it computes
// must match (src/pipeline/train-pool.ts); thread count, checkpoint interval and cache size may differ.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runTrainJob } from '../src/pipeline/train-pool.js';
import { smallRunConfig, withTmp } from './run-helpers.js';

test('a finished run is reused for the same settings, and refused, naming each difference, for other ones', withTmp('run-identity-', async (tmp) => {
  const dir = join(tmp, 'SYNTH', 'mlp-seed1');
  const config = smallRunConfig({ seed: 1 });
  assert.equal(await runTrainJob({ dir, config, label: 'SYNTH/mlp-seed1' }), 'trained');
  assert.equal(await runTrainJob({ dir, config, label: 'SYNTH/mlp-seed1' }), 'reused');
  // Runtime-only settings do not make it another run.
  assert.equal(await runTrainJob({ dir, config: smallRunConfig({ seed: 1, threads: 3, checkpoint_every: 5 }), label: 'SYNTH/mlp-seed1' }), 'reused');
  // A PPO value or the budget does: silently reusing the old run would report it as this one.
  await assert.rejects(
    runTrainJob({ dir, config: smallRunConfig({ seed: 1, learning_rate: 3e-4, total_timesteps: 480 }), label: 'SYNTH/mlp-seed1' }),
    /holds another run than SYNTH\/mlp-seed1: total_timesteps 240 there, 480 here; learning_rate 0\.001 there, 0\.0003 here; choose another --out/,
  );
}));
