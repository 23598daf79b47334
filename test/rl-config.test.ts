import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFieldDocs, defaultConfig, DEFAULT_MODEL, PAPER_PPO, parseFlagValue, parseTrainConfig, readConfigFile, runShape } from '../src/rl/config.js';

test('PAPER_PPO holds the paper\'s PPO settings; the defaults are the measured ones (docs/learning.md)', () => {
  // The values listed in the paper (CleanRL names), written out here independently.
  const paper = {
    total_timesteps: 13860, learning_rate: 5e-4, num_envs: 1, num_steps: 40, anneal_lr: true, gamma: 0.95, gae_lambda: 0.98,
    update_epochs: 1, norm_adv: true, clip_coef: 0.2, clip_vloss: true, ent_coef: 0.05, vf_coef: 0.5, kl_coef: 0.05,
    max_grad_norm: 0.5, target_kl: null, gradient_accumulation_steps: 8, minibatch_size: 32,
  };
  assert.deepEqual({ ...PAPER_PPO }, paper);
  const p = parseTrainConfig(PAPER_PPO, 'paper');
  for (const [k, v] of Object.entries(paper)) assert.equal(p[k as keyof typeof p], v, k);
  const c = defaultConfig();
  const measured = {
    learning_rate: 1e-3, num_steps: 200, anneal_lr: false, gamma: 0, gae_lambda: 0, update_epochs: 4, ent_coef: 0.1, kl_coef: 0.2,
    gradient_accumulation_steps: 1, minibatch_size: 100, total_timesteps: 13860, max_episode_steps: 65,
  };
  for (const [k, v] of Object.entries(measured)) assert.equal(c[k as keyof typeof c], v, k);
  assert.equal(c.policy, 'llm');
  assert.equal(c.model, DEFAULT_MODEL);
  assert.equal(c.trainable_layers, 2);
  assert.equal(c.policy_head, 'lm');
  assert.equal(c.head_input, 'last');
  assert.equal(c.head_norm, 'global');
  assert.equal(c.prompt_style, 'compact');
  assert.equal(c.prompt_max_tokens, 1024);
  assert.equal(c.start, 'random');
  // Every field is documented.
  for (const f of configFieldDocs()) assert.ok(f.doc.length > 10, `${f.key} has no documentation`);
});

test('runShape: 40-sample rollouts, 346 updates, minibatches 32 + 8, micro-batches of 4', () => {
  const s = runShape(parseTrainConfig(PAPER_PPO, 'paper'));
  // 13860 / 40 = 346.5 -> 346 updates, 13860 - 346 * 40 = 20 steps never collected.
  assert.deepEqual(s, { batchSize: 40, numUpdates: 346, microBatchSize: 4, minibatchesPerEpoch: 2, unusedTimesteps: 20 });
  const s2 = runShape(parseTrainConfig({ num_envs: 4, num_steps: 16, minibatch_size: 16, gradient_accumulation_steps: 2, total_timesteps: 1000 }, 't'));
  assert.deepEqual(s2, { batchSize: 64, numUpdates: 15, microBatchSize: 8, minibatchesPerEpoch: 4, unusedTimesteps: 40 });
});

test('parseTrainConfig: unknown fields and bad values are errors naming the field and the source', () => {
  assert.throws(() => parseTrainConfig({ learning_rat: 1e-3, foo: 1 }, 'my.yaml'), /invalid training config \(my\.yaml\): unknown field\(s\) learning_rat, foo/);
  assert.throws(() => parseTrainConfig({ gamma: 1.5 }, 'x'), /gamma: Too big/);
  assert.throws(() => parseTrainConfig({ num_steps: 2.5 }, 'x'), /num_steps: .*int/);
  assert.throws(() => parseTrainConfig({ policy: 'transformer' }, 'x'), /policy: .*"llm"\|"mlp"/);
  assert.throws(() => parseTrainConfig({ train_start: '2020-13' }, 'x'), /train_start: expected a date YYYY-MM-DD/);
  assert.throws(() => parseTrainConfig({ trainable_layers: -1 }, 'x'), /trainable_layers/);
  assert.throws(() => parseTrainConfig({ ...PAPER_PPO, minibatch_size: 30 }, 'x'), /minibatch_size 30 must be a multiple of gradient_accumulation_steps 8/);
  assert.throws(() => parseTrainConfig({ ...PAPER_PPO, minibatch_size: 48 }, 'x'), /minibatch_size 48 exceeds the rollout batch num_steps \* num_envs = 40/);
  assert.throws(() => parseTrainConfig({ ...PAPER_PPO, total_timesteps: 39 }, 'x'), /total_timesteps 39 is less than one rollout of num_steps \* num_envs = 40 steps/);
  assert.throws(() => parseTrainConfig({ train_start: '2021-01-01', train_end: '2020-01-01' }, 'x'), /train_start 2021-01-01 is after train_end 2020-01-01/);
  assert.throws(() => parseTrainConfig({ train_end: '2021-01-01', test_start: '2020-06-01' }, 'x'), /test_start 2020-06-01 must come after train_end 2021-01-01/);
  assert.throws(() => parseTrainConfig({ fee_bps: 5 }, 'x'), /fee_bps and allow_short apply only to mode account/);
  assert.throws(() => parseTrainConfig({ mode: 'account', cost_bps: 5 }, 'x'), /cost_bps applies only to mode benchmark/);
  assert.throws(() => parseTrainConfig('not an object', 'x'), /invalid training config \(x\)/);
});

test('readConfigFile: JSON and YAML, with clear errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rl-config-'));
  try {
    const yaml = join(dir, 'c.yaml');
    writeFileSync(yaml, 'policy: mlp\nlearning_rate: 3.0e-4\nmlp_hidden: [32, 16]\ntarget_kl: 0.02\n');
    const fromYaml = parseTrainConfig(readConfigFile(yaml), yaml);
    assert.equal(fromYaml.policy, 'mlp');
    assert.equal(fromYaml.learning_rate, 3e-4);
    assert.deepEqual(fromYaml.mlp_hidden, [32, 16]);
    assert.equal(fromYaml.target_kl, 0.02);
    const json = join(dir, 'c.json');
    writeFileSync(json, JSON.stringify({ seed: 9, anneal_lr: false }));
    assert.deepEqual(readConfigFile(json), { seed: 9, anneal_lr: false });
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"seed": ');
    assert.throws(() => readConfigFile(bad), new RegExp(`config file ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
    const list = join(dir, 'list.yaml');
    writeFileSync(list, '- 1\n- 2\n');
    assert.throws(() => readConfigFile(list), /expected an object of fields at the top level/);
    const txt = join(dir, 'c.txt');
    writeFileSync(txt, 'seed=1');
    assert.throws(() => readConfigFile(txt), /unknown config file extension "\.txt"; expected \.json, \.yaml or \.yml/);
    assert.throws(() => readConfigFile(join(dir, 'missing.json')), /cannot read config file .*missing\.json/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('parseFlagValue: strings, numbers, booleans, null and lists by the field\'s type', () => {
  assert.equal(parseFlagValue('seed', '7'), 7);
  assert.equal(parseFlagValue('learning_rate', '3e-4'), 3e-4);
  assert.equal(parseFlagValue('anneal_lr', 'false'), false);
  assert.equal(parseFlagValue('target_kl', 'null'), null);
  assert.equal(parseFlagValue('target_kl', '0.015'), 0.015);
  assert.equal(parseFlagValue('ticker', '7203'), '7203'); // a numeric ticker stays a string
  assert.equal(parseFlagValue('data', 'data/msft.json'), 'data/msft.json');
  assert.deepEqual(parseFlagValue('mlp_hidden', '64,32'), [64, 32]);
  assert.deepEqual(parseFlagValue('mlp_hidden', '16'), [16]);
  assert.throws(() => parseFlagValue('seed', '1.5'), /--seed "1\.5": .*int/);
  assert.throws(() => parseFlagValue('gamma', '2'), /--gamma "2": Too big/);
  assert.throws(() => parseFlagValue('anneal_lr', 'yes'), /--anneal-lr "yes": .*boolean/);
  assert.throws(() => parseFlagValue('policy', 'rnn'), /--policy "rnn"/);
  assert.throws(() => parseFlagValue('mlp_hidden', '64,x'), /--mlp-hidden "64,x"/);
});

test('configs/paper-smollm2.yaml: the paper setting parses and keeps the paper PPO values', async () => {
  const { readConfigFile } = await import('../src/rl/config.js');
  const c = parseTrainConfig(readConfigFile('configs/paper-smollm2.yaml'), 'configs/paper-smollm2.yaml');
  assert.equal(c.model, 'random:smollm2-135m');
  assert.equal(c.trainable_layers, 4);
  assert.equal(c.prompt_style, 'full');
  assert.equal(c.prompt_max_tokens, 768);
  for (const [k, v] of Object.entries(PAPER_PPO)) assert.equal(c[k as keyof typeof c], v, k);
  assert.equal(c.policy_head, 'lm');
  assert.equal(c.head_input, 'last');
  assert.equal(c.head_norm, 'none');
  const ppoOnly = parseTrainConfig(readConfigFile('configs/paper-ppo.yaml'), 'configs/paper-ppo.yaml');
  for (const [k, v] of Object.entries(PAPER_PPO)) assert.equal(ppoOnly[k as keyof typeof ppoOnly], v, `paper-ppo.yaml ${k}`);
});
