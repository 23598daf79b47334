// End to end: `flag-trader train` and `flag-trader evaluate`, spawned as a user would run them, plus a
// real SIGKILL in the middle of training followed by --resume; option errors checked in-process.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { registerTrain } from '../src/cli/train.js';
import { parseTrainConfig } from '../src/rl/config.js';
import { runTraining, RUN_FILES } from '../src/rl/run.js';
import { syntheticMarket } from '../src/data/synthetic.js';
import { metricsOf, tensorsOf } from './run-helpers.js';
import { repoRoot } from './shared-paths.js';


const ROOT = repoRoot();
const MAIN = ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts')];
const TMP = mkdtempSync(join(tmpdir(), 'flag-trader-cli-train-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

interface Run { code: number; stdout: string; stderr: string }

function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...MAIN, ...args], { cwd: ROOT, timeout: 60000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

/** Run the commands in-process; resolves to the error message (or '' when it succeeded). */
async function inProcess(...args: string[]): Promise<string> {
  const program = new Command().exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  registerTrain(program);
  try { await program.parseAsync(['node', 'flag-trader', ...args]); return ''; } catch (e) { return (e as Error).message; }
}

// 40-step rollouts (the paper's shape; the default is 200) so that 160 steps make 4 updates.
const SMALL = ['--policy', 'mlp', '--synthetic-days', '300', '--total-timesteps', '160', '--num-steps', '40', '--minibatch-size', '32', '--checkpoint-every', '2', '--mlp-hidden', '16,16'];

test('train then evaluate: files, config from flags, summary, backtest-shaped JSON', async () => {
  const out = join(TMP, 'run');
  const r = await cli('train', ...SMALL, '--seed', '4', '--learning-rate', '1e-3', '--out', out);
  assert.equal(r.code, 0, r.stderr);
  for (const f of Object.values(RUN_FILES)) assert.ok(existsSync(join(out, f)), `${f} written`);
  const rec = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(rec.config.seed, 4);
  assert.equal(rec.config.learning_rate, 1e-3);
  assert.deepEqual(rec.config.mlp_hidden, [16, 16]);
  assert.equal(rec.derived.num_updates, 4);
  // stdout: the printed config.json, then the summary.
  assert.ok(r.stdout.startsWith(JSON.stringify(rec, null, 2)), 'the config is printed first');
  assert.match(r.stdout, /updates 4\/4 \(160 environment steps\)/);
  assert.match(r.stdout, /next: flag-trader evaluate --run /);
  assert.equal(metricsOf(out).length, 4);

  const ev = await cli('evaluate', '--run', out, '--json');
  assert.equal(ev.code, 0, ev.stderr);
  const synth = syntheticMarket({ seed: 1, days: 300 });
  const records = JSON.parse(ev.stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(records.map((x) => x.agent), ['ppo-mlp', 'buy-and-hold', 'momentum', 'sma-crossover']);
  for (const x of records) {
    for (const k of ['agent', 'asset', 'start', 'end', 'prices', 'metrics', 'positions']) assert.ok(k in x, `${k} in the JSON`);
    const m = x.metrics as Record<string, number>;
    for (const k of ['cumulativeReturn', 'sharpeRatio', 'annualizedVolatility', 'maxDrawdown']) assert.equal(typeof m[k], 'number');
    // Default test window: the day after the training window (which ends at 70% of the series) to the last date.
    assert.equal(x.start, synth.dates[Math.floor(0.7 * 299) + 1]);
    assert.equal(x.end, synth.dates[299]);
    assert.equal((x.positions as number[]).length, (x.prices as number) - 1);
  }
  assert.equal(records[0]!.start, records[1]!.start);
  // Buy and hold is long every day.
  assert.ok((records[1]!.positions as number[]).every((p) => p === 1));

  const s1 = await cli('evaluate', '--run', out, '--sampled', '--seeds', '1,2', '--baselines', 'none', '--json');
  const s2 = await cli('evaluate', '--run', out, '--sampled', '--seeds', '1,2', '--baselines', 'none', '--json');
  assert.equal(s1.code, 0, s1.stderr);
  const a = JSON.parse(s1.stdout) as Array<{ agent: string; positions: number[] }>;
  assert.deepEqual(a.map((x) => x.agent), ['ppo-mlp-sampled(seed=1)', 'ppo-mlp-sampled(seed=2)']);
  assert.equal(s1.stdout, s2.stdout, 'sampled evaluation is reproducible per seed');
  assert.notDeepEqual(a[0]!.positions, a[1]!.positions);

  const untrained = await cli('evaluate', '--run', out, '--untrained', '--baselines', 'none', '--json');
  assert.equal(untrained.code, 0, untrained.stderr);
  const u = JSON.parse(untrained.stdout) as { agent: string; start: string };
  assert.equal(u.agent, 'ppo-mlp-untrained', 'one agent -> one JSON object');
  assert.equal(u.start, records[0]!.start);

  const table = await cli('evaluate', '--run', out, '--test-start', '2020-12-01', '--test-end', '2021-01-29', '--baselines', 'buy-and-hold');
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /2020-12-01\.\.2021-01-29/);
  assert.match(table.stdout, /^ppo-mlp\s/m);
  assert.match(table.stdout, /^buy-and-hold\s/m);
});

test('train: a YAML config file, overridden by flags; bad values exit 1 with the reason', async () => {
  const yaml = join(TMP, 'c.yaml');
  writeFileSync(yaml, 'policy: mlp\nsynthetic_days: 300\ntotal_timesteps: 80\nnum_steps: 40\nminibatch_size: 32\nseed: 7\nlearning_rate: 0.002\n');
  const out = join(TMP, 'yaml-run');
  const r = await cli('train', '--config', yaml, '--seed', '8', '--out', out, '--quiet');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '', '--quiet prints nothing');
  const rec = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(rec.config.seed, 8);
  assert.equal(rec.config.learning_rate, 0.002);
  const bad = await cli('train', '--policy', 'mlp', '--gamma', '1.5', '--out', join(TMP, 'never'));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--gamma "1\.5": Too big/);
  assert.ok(!existsSync(join(TMP, 'never')));
});

test('train / evaluate option errors name the problem', async () => {
  assert.match(await inProcess('train', '--policy', 'llm', '--model', 'random:tiny', '--trainable-layers', '9', '--out', join(TMP, 'llm')),
    /trainable_layers must be an integer in 1\.\.4 for random:tiny \(it has 4 layers\), got 9/);
  assert.ok(!existsSync(join(TMP, 'llm')), 'no run directory for a policy that cannot be built');
  assert.match(await inProcess('train', '--bogus', '1'), /unknown option '--bogus'/);
  assert.match(await inProcess('train', '--num-steps', 'x'), /--num-steps "x"/);
  const cfg = join(TMP, 'unknown.json');
  writeFileSync(cfg, JSON.stringify({ policy: 'mlp', learning_rat: 1 }));
  assert.match(await inProcess('train', '--config', cfg), /unknown field\(s\) learning_rat/);
  assert.match(await inProcess('train', '--resume', join(TMP, 'run'), '--seed', '3', '--out', 'x'), /--resume uses the run's own config; remove --seed, --out/);
  assert.match(await inProcess('evaluate', '--run', join(TMP, 'nothing-here')), /is not a training run/);
  assert.match(await inProcess('evaluate', '--run', join(TMP, 'run'), '--seeds', '1'), /--seeds applies only with --sampled/);
  assert.match(await inProcess('evaluate', '--run', join(TMP, 'run'), '--test-start', '2021/01/01'), /--test-start "2021\/01\/01": expected a date YYYY-MM-DD/);
  assert.match(await inProcess('evaluate', '--run', join(TMP, 'run'), '--baselines', 'nope'), /unknown agent "nope"/);
  assert.match(await inProcess('evaluate'), /required option '--run <dir>' not specified/);
});

test('SIGKILL in the middle of training, then --resume: identical to an uninterrupted run', async () => {
  const flags = ['--policy', 'mlp', '--synthetic-days', '400', '--num-steps', '200', '--minibatch-size', '64', '--total-timesteps', String(200 * 120),
    '--checkpoint-every', '7', '--seed', '11'];
  const killed = join(TMP, 'killed');
  const child = spawn(process.execPath, [...MAIN, 'train', ...flags, '--out', killed, '--quiet'], { cwd: ROOT, stdio: 'ignore' });
  const metricsPath = join(killed, RUN_FILES.metrics);
  const lines = () => (existsSync(metricsPath) ? readFileSync(metricsPath, 'utf8').split('\n').length - 1 : 0);
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (lines() >= 10) { clearInterval(timer); child.kill('SIGKILL'); resolve(); }
    }, 5);
    child.on('exit', () => { clearInterval(timer); reject(new Error('training ended before it could be killed')); });
  });
  await new Promise((r) => child.once('exit', r));
  const atKill = lines();
  assert.ok(atKill < 120 && !existsSync(join(killed, RUN_FILES.policy)), `killed mid-run (after ${atKill} updates)`);

  const resumed = await cli('train', '--resume', killed);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming .* from update \d+ of 120/);

  const full = join(TMP, 'uninterrupted');
  const c = parseTrainConfig({ policy: 'mlp', synthetic_days: 400, num_steps: 200, minibatch_size: 64, total_timesteps: 200 * 120, checkpoint_every: 7, seed: 11 }, 'test');
  await runTraining({ out: full, config: c });
  assert.deepEqual(metricsOf(killed), metricsOf(full));
  assert.deepEqual(tensorsOf(join(killed, RUN_FILES.policy)), tensorsOf(join(full, RUN_FILES.policy)));
});
