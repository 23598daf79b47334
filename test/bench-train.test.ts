// The training-loop benchmark (bench/train.ts) on a tiny model: its bookkeeping adds up (the phases
// and "other" make the wall time, every prompt token goes through the frozen layers), the speedups
// run fewer top-K tokens than the plain computation, and bad options are errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatTrainBench, runTrainBench, STEP_PHASES, type UpdateRecord } from '../bench/train.js';
import { backendInfo, getBackend } from '../src/kernels/index.js';

test('bench-train on random:tiny with --compare: phases add up to the wall time, tokens are accounted for, speedups save top-K work', { timeout: 120_000 }, async () => {
  const r = await runTrainBench({ model: 'random:tiny', trainableLayers: 2, updates: 2, compare: true, threads: 1 });
  assert.deepEqual(r.variants.map((v) => v.label), ['speedups', 'plain']);
  assert.equal(r.tokenUnit, 'bytes');
  assert.deepEqual(r.prompt, { style: 'compact', maxTokens: 512 });
  const all: UpdateRecord[] = r.variants.flatMap((v) => [v.warmup, ...v.updates]);
  assert.deepEqual(all.map((u) => u.update), [1, 2, 1, 2]);
  for (const u of all) {
    assert.equal(u.steps, 40);
    const sum = STEP_PHASES.reduce((s, [k]) => s + u.perStep[k], 0);
    assert.ok(Math.abs(sum * u.steps - u.seconds) < 1e-6 * u.seconds, `phases ${sum * u.steps} s vs wall ${u.seconds} s`);
    assert.ok(u.perStep.other < 0.05 * u.seconds / u.steps, 'the phases cover nearly all of the time');
    assert.ok(u.prompts >= 40, 'at least one prompt per step');
    // Every prompt token runs through the frozen layers or comes from the prefix cache.
    assert.ok(Math.abs((u.frozenComputedPerStep + u.frozenCachedPerStep) * u.steps - u.meanT * u.prompts) < 1e-6 * u.meanT * u.prompts);
  }
  const [fast, plain] = r.variants;
  for (const [a, b] of [[fast!.warmup, plain!.warmup], [fast!.updates[0]!, plain!.updates[0]!]]) {
    assert.ok(a!.rolloutTokensPerStep < 0.8 * b!.rolloutTokensPerStep, 'the rollout reuses the system turn');
    assert.ok(a!.referenceTokensPerStep < 0.8 * b!.referenceTokensPerStep, 'the reference reuses the prefixes');
    assert.ok(a!.updateTokensPerStep < 0.8 * b!.updateTokensPerStep, 'the update runs the system turn once per minibatch');
    // The plain computation runs whole prompts through the top layers: the reference once per sample,
    // the rollout once per sample and once more for each bootstrap value.
    assert.ok(b!.referenceTokensPerStep > 0.5 * b!.meanT && b!.rolloutTokensPerStep >= b!.referenceTokensPerStep);
  }
  assert.equal(fast!.projectedRun.steps, 346 * 40);
  assert.ok(Math.abs(fast!.projectedRun.hours - 346 * 40 / fast!.median.stepsPerSec / 3600) < 1e-9);
  assert.equal(r.speedup, fast!.median.stepsPerSec / plain!.median.stepsPerSec);
  // Matrix products by phase: the model's work is where its phases say, and the update's backward is
  // about twice its forward (weight and input gradients); the optimizer and the environment do none.
  const g = fast!.median.gflopPerStep;
  for (const k of ['frozen', 'rollout_forward', 'reference', 'update_forward', 'update_backward'] as const) assert.ok(g[k] > 0, `${k} computes products`);
  assert.equal(g.optimizer + g.rollout + g.prompt + g.tokenize, 0);
  const gp = plain!.median.gflopPerStep;
  assert.ok(gp.update_backward > 1.5 * gp.update_forward && gp.update_backward < 2.5 * gp.update_forward, `backward ${gp.update_backward} vs forward ${gp.update_forward}`);
  assert.ok(g.update_forward < 0.5 * gp.update_forward, 'the first minibatch takes the rollout\'s activations instead of a forward');
  assert.ok(plain!.median.gflopPerStep.reference > 1.25 * g.reference, `the reference cache saves products: ${plain!.median.gflopPerStep.reference} vs ${g.reference}`);
  assert.ok(r.sgemm.gflops > 0 && r.sgemm.gflops === (r.sgemm.before + r.sgemm.after) / 2);
  assert.equal(r.stepsPerSecPer100Gflops, fast!.median.stepsPerSec / (r.sgemm.gflops / 100));
  const noThreads = (s: string) => s.replace(/ \(threads \d+\)/, '');
  assert.equal(noThreads(r.blas), noThreads(backendInfo(getBackend())), 'the kernels that set the sgemm rate are named');
  assert.ok(formatTrainBench(r).includes(`kernels: ${r.blas}`));
  // Each update's first minibatch (32 of its 40 samples) took what its rollout kept (every rollout
  // forward: 40 steps, the final bootstrap value, one more per episode cut by the time limit), and the
  // budget was not reached on this tiny model.
  assert.ok(r.rolloutCache.kept >= 2 * 41, `${r.rolloutCache.kept} kept`);
  assert.equal(r.rolloutCache.taken, 2 * 32);
  assert.ok(r.rolloutCache.peakMb > 0 && r.rolloutCache.peakMb < r.rolloutCache.limitMb);
});

test('bench-train: fewer than 2 updates, or a budget the prompt cannot meet, is an error', async () => {
  await assert.rejects(runTrainBench({ model: 'random:tiny', updates: 1 }), /--updates must be an integer >= 2 \(the first is the warm-up\), got 1/);
  await assert.rejects(runTrainBench({ model: 'random:tiny', updates: 2, promptStyle: 'full', promptMaxTokens: 512 }), /prompt budget too small/);
});
