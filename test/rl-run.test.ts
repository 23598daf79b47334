import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTrainConfig, type TrainConfig } from '../src/rl/config.js';
import { runTraining, RUN_FILES } from '../src/rl/run.js';
import { loadCheckpoint, loadParamsInto, readPolicyTensors } from '../src/rl/checkpoint.js';
import { syntheticMarket } from '../src/data/synthetic.js';
import { createPolicy } from '../src/rl/policies.js';
import { FEATURE_NAMES } from '../src/env/features.js';
import { metricsOf, tensorsOf, smallRunConfig, withTmp as withTmpDir } from './run-helpers.js';

const cfg = smallRunConfig;
const withTmp = (fn: (dir: string) => Promise<void>) => withTmpDir('rl-run-', fn);

test('train: the run directory holds config.json with provenance, metrics.jsonl, checkpoint and policy', withTmp(async (dir) => {
  const out = join(dir, 'run');
  const r = await runTraining({ out, config: cfg() });
  assert.equal(r.updatesDone, 6);
  assert.equal(r.stopped, false);
  const rec = JSON.parse(readFileSync(join(out, RUN_FILES.config), 'utf8'));
  assert.deepEqual(rec.config, cfg());
  assert.deepEqual(rec.derived, { batch_size: 40, num_updates: 6, micro_batch_size: 4, minibatches_per_epoch: 3, unused_timesteps: 0 });
  assert.match(rec.hashes.data.sha256, /^[0-9a-f]{64}$/);
  assert.equal(rec.hashes.data.source, 'synthetic:seed=1:days=300');
  assert.match(rec.hashes.model, /^mlp:/);
  assert.match(rec.hashes.code.src_sha256, /^[0-9a-f]{64}$/);
  assert.equal(rec.hashes.code.package_version, JSON.parse(readFileSync('package.json', 'utf8')).version);
  // Training window default: first date .. the date at 70% of the series.
  const series = syntheticMarket({ seed: 1, days: 300 });
  assert.equal(rec.train_window.start, series.dates[0]);
  assert.equal(rec.train_window.end, series.dates[Math.floor(0.7 * 299)]);
  const m = metricsOf(out);
  assert.deepEqual(m.map((x) => x.update), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(m.map((x) => x.global_step), [40, 80, 120, 160, 200, 240]);
  // 2 epochs x 3 minibatches (16, 16, 8) per update.
  assert.deepEqual(m.map((x) => x.optimizer_steps), [6, 12, 18, 24, 30, 36]);
  // The final policy file holds exactly the checkpoint's parameters.
  const ckpt = loadCheckpoint(join(out, RUN_FILES.checkpoint));
  const pol = readPolicyTensors(join(out, RUN_FILES.policy));
  assert.deepEqual([...pol.params.keys()], [...ckpt.params.keys()]);
  for (const [k, t] of pol.params) assert.deepEqual(Array.from(t.data), Array.from(ckpt.params.get(k)!.data));
  assert.equal(ckpt.state.metrics.length, 6);
  assert.equal(ckpt.state.trainer.update, 6);
}));

test('resume: stopped after update 3 (last checkpoint at 2), resumed to the end == uninterrupted, bit for bit', withTmp(async (dir) => {
  const full = join(dir, 'full'), cut = join(dir, 'cut');
  await runTraining({ out: full, config: cfg() });
  const first = await runTraining({ out: cut, config: cfg(), stopAfter: 3 });
  assert.equal(first.stopped, true);
  assert.equal(metricsOf(cut).length, 3);
  assert.equal(loadCheckpoint(join(cut, RUN_FILES.checkpoint)).state.trainer.update, 2);
  assert.ok(!existsSync(join(cut, RUN_FILES.policy)));
  const notes: string[] = [];
  const second = await runTraining({ out: cut, resume: true, log: (m) => notes.push(m) });
  assert.equal(second.startUpdate, 2);
  assert.deepEqual(notes, [`resuming ${cut} from update 2 of 6`]);
  assert.deepEqual(metricsOf(cut), metricsOf(full));
  assert.deepEqual(tensorsOf(join(cut, RUN_FILES.policy)), tensorsOf(join(full, RUN_FILES.policy)));
  // Optimizer moments and every saved state (RNGs, environments, episode counters) agree too.
  assert.deepEqual(tensorsOf(join(cut, RUN_FILES.checkpoint)), tensorsOf(join(full, RUN_FILES.checkpoint)));
  assert.deepEqual(loadCheckpoint(join(cut, RUN_FILES.checkpoint)).state.trainer, loadCheckpoint(join(full, RUN_FILES.checkpoint)).state.trainer);
  assert.deepEqual(readFileSync(join(cut, RUN_FILES.config), 'utf8'), readFileSync(join(full, RUN_FILES.config), 'utf8'));
}));

test('resume: a run stopped before its first checkpoint starts again from update 0 and ends the same', withTmp(async (dir) => {
  const full = join(dir, 'full'), cut = join(dir, 'cut');
  await runTraining({ out: full, config: cfg({ seed: 5 }) });
  await runTraining({ out: cut, config: cfg({ seed: 5 }), stopAfter: 1 });
  assert.ok(!existsSync(join(cut, RUN_FILES.checkpoint)));
  const r = await runTraining({ out: cut, resume: true });
  assert.equal(r.startUpdate, 0);
  assert.deepEqual(metricsOf(cut), metricsOf(full));
  assert.deepEqual(tensorsOf(join(cut, RUN_FILES.policy)), tensorsOf(join(full, RUN_FILES.policy)));
}));

test('determinism: the same seed gives identical metrics; another seed does not', withTmp(async (dir) => {
  await runTraining({ out: join(dir, 'a'), config: cfg({ seed: 3 }) });
  await runTraining({ out: join(dir, 'b'), config: cfg({ seed: 3 }) });
  await runTraining({ out: join(dir, 'c'), config: cfg({ seed: 4 }) });
  assert.deepEqual(metricsOf(join(dir, 'a')), metricsOf(join(dir, 'b')));
  assert.notDeepEqual(metricsOf(join(dir, 'a')), metricsOf(join(dir, 'c')));
}));

test('run errors: existing run, missing run, changed data, mismatched tensors', withTmp(async (dir) => {
  const out = join(dir, 'run');
  await runTraining({ out, config: cfg({ total_timesteps: 80 }) });
  await assert.rejects(runTraining({ out, config: cfg() }), new RegExp(`${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} already holds a run .*--resume`));
  await assert.rejects(runTraining({ out: join(dir, 'nothing'), resume: true }), /is not a training run: .*config\.json does not exist/);

  // A data file that changes between the start and the resume.
  const series = syntheticMarket({ seed: 2, days: 120 });
  const csv = join(dir, 'prices.csv');
  const rows = series.dates.map((d, i) => { const p = series.prices[i]!.toFixed(4); return `${d},${p},${p},${p},${p},${p},1000`; });
  writeFileSync(csv, ['Date,Open,High,Low,Close,Adj Close,Volume', ...rows].join('\n') + '\n');
  const fileRun = join(dir, 'file-run');
  await runTraining({ out: fileRun, config: cfg({ data: csv }), stopAfter: 2 });
  writeFileSync(csv, ['Date,Open,High,Low,Close,Adj Close,Volume', ...rows.slice(0, -1)].join('\n') + '\n');
  await assert.rejects(runTraining({ out: fileRun, resume: true }), /cannot resume .*the data changed since the run started/);

  const small = await createPolicy(cfg({ mlp_hidden: [8] }));
  const tensors = readPolicyTensors(join(out, RUN_FILES.policy)).params;
  const F = FEATURE_NAMES.length;
  assert.throws(() => loadParamsInto(small.params(), tensors, 'policy.safetensors'),
    new RegExp(`policy\\.safetensors: the tensors do not match the policy: .*trunk\\.0\\.weight has shape \\[16, ${F}\\], expected \\[8, ${F}\\].*unexpected tensor trunk\\.1\\.weight`));
  assert.throws(() => loadCheckpoint(join(out, RUN_FILES.policy)), /not a PPO checkpoint \(metadata format is "flag-trader\/policy"/);
}));
