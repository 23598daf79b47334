// reproduce --walk-forward end to end on a tiny dated market with news (the synthetic market written as
// an INVESTOR-BENCH file): two rolling windows, the tiny random-weight LLM and the MLP, trained through
// the worker pool; the report's walk-forward section and run folders; and no look-ahead: every price
// and headline after a window's training end changed leaves its trained policies bit-identical, and
// every price and headline after a test day changed leaves every decision up to that day identical.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { syntheticMarket } from '../src/data/synthetic.js';
import { ANNUALIZATIONS } from '../src/eval/metrics.js';
import { evaluateRun } from '../src/eval/evaluate.js';
import { parseWalkForwardSpec } from '../src/eval/walk-forward.js';
import { planWalkForward, walkForward, type WalkForwardOptions } from '../src/pipeline/walk-forward.js';
import { runDir } from '../src/pipeline/run-spec.js';
import { RUN_FILES } from '../src/rl/run.js';
import { Rng } from '../src/util/rng.js';
import { metricsOf } from './run-helpers.js';

const BASE = {
  model: 'random:tiny', trainable_layers: 1, prompt_style: 'compact', prompt_max_tokens: 600, head_input: 'last',
  total_timesteps: 40, num_steps: 20, minibatch_size: 20, gradient_accumulation_steps: 4, update_epochs: 1,
  lookback: 10, max_episode_steps: 20, mlp_hidden: [16, 16],
};
const DAYS = 62; // 2 windows of 40:10:10, and 2 days left over

const TMP = mkdtempSync(join(tmpdir(), 'wf-run-'));
process.on('exit', () => rmSync(TMP, { recursive: true, force: true }));

const market = syntheticMarket({ seed: 3, days: DAYS });

/** The market as an INVESTOR-BENCH file (asset MARKET); prices and headlines after `after` (a date) replaced. */
function marketFile(name: string, after?: string): string {
  const rng = new Rng(99);
  const root: Record<string, { prices: number; news: string[] }> = {};
  market.dates.forEach((d, i) => {
    const later = after !== undefined && d > after;
    root[d] = {
      prices: later ? market.prices[i]! * Math.exp(0.2 * rng.normal()) : market.prices[i]!,
      news: later ? [`Unrelated headline ${i} (Sentiment: ${['positive', 'negative'][rng.int(2)]})`] : market.text![i]!.map((t) => t.text),
    };
  });
  // Always market.json (in a folder of its own): the asset's name, which the prompt shows, comes from the file name.
  mkdirSync(join(TMP, name), { recursive: true });
  const path = join(TMP, name, 'market.json');
  writeFileSync(path, JSON.stringify(root));
  return path;
}

function options(data: string, out: string, over: Partial<WalkForwardOptions> = {}): WalkForwardOptions {
  return {
    out, title: 'wf test', seeds: [1], base: BASE, mlpAblation: true, untrained: false, baselines: ['momentum'],
    targets: [{ asset: 'SYN', data, format: 'investorbench', annualization: { ...ANNUALIZATIONS.stock } }],
    spec: parseWalkForwardSpec('40:10:10'), bootstrapResamples: 100, workers: 2, ...over,
  };
}

const bytes = (p: string) => readFileSync(p).toString('base64');

test('walk-forward: two windows trained and tested; report section; no look-ahead in training or decisions', { timeout: 600_000 }, async () => {
  const data = marketFile('market');
  const out = join(TMP, 'a');
  const plan = await planWalkForward(options(data, out));
  const [w0, w1] = plan.assets[0]!.windows;
  assert.equal(plan.assets[0]!.windows.length, 2);
  assert.equal(plan.assets[0]!.unused, 2);
  const r = await walkForward(options(data, out));

  // The runs are where their ids say, trained on their own window only.
  for (const spec of plan.runs) {
    const dir = runDir(out, spec.id);
    assert.ok(existsSync(join(dir, RUN_FILES.policy)), spec.id);
    const rec = JSON.parse(readFileSync(join(dir, RUN_FILES.config), 'utf8')) as { train_window: { start: string; end: string } };
    assert.deepEqual(rec.train_window, { start: spec.window!.train.start, end: spec.window!.train.end, prices: 40 } as never);
  }
  // The report: one walk-forward section with both windows, every agent in each.
  const s = r.walkForward[0]!;
  assert.deepEqual(s.windows.map((w) => [w.train.start, w.test.start, w.test.end, w.prices]),
    [[w0!.train.start, w0!.test.start, w0!.test.end, 10], [w1!.train.start, w1!.test.start, w1!.test.end, 10]]);
  assert.deepEqual(s.agents.map((a) => a.name), ['buy-and-hold', 'flag-trader (PPO LLM)', 'PPO MLP (ablation)', 'momentum']);
  assert.deepEqual(r.summaries, []);
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(md, /## SYN walk-forward: 2 windows, rolling 40:10:10/);
  assert.match(md, /Walk-forward SYN \(40:10:10\): 2 windows over \S+\.\.\S+, rolling training windows of 40 trading days, each tested on the next 10 trading days, advancing by 10; the last 2 days of the range are too few/);
  assert.ok(readFileSync(join(out, 'report.html'), 'utf8').includes('wf-sr-SYN'));
  // Buy & Hold's SR per window equals a backtest's on the same days (results.json holds every backtest).
  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Array<{ agent: string; start: string; metrics: { sharpeRatio: number } }>;
  for (const w of s.windows) {
    const bh = results.find((b) => b.agent === 'buy-and-hold' && b.start === w.test.start)!;
    assert.equal(w.agents[0]!.sharpeRatio, bh.metrics.sharpeRatio);
  }

  // No look-ahead in training: every price and headline after window 1's training end changed; the walk
  // cut to window 1 (--to its test end) trains bit-identical policies.
  const changed = marketFile('changed-after-train', w0!.train.end);
  const outB = join(TMP, 'b');
  const rB = await walkForward(options(changed, outB, { to: w0!.test.end }));
  assert.equal(rB.walkForward[0]!.windows.length, 1);
  for (const spec of plan.runs.filter((p) => p.window!.train.end === w0!.train.end)) {
    assert.equal(bytes(join(runDir(outB, spec.id), RUN_FILES.policy)), bytes(join(runDir(out, spec.id), RUN_FILES.policy)), `${spec.id} policy`);
    assert.deepEqual(metricsOf(runDir(outB, spec.id)), metricsOf(runDir(out, spec.id)), `${spec.id} metrics`);
  }
  // (The test days' prices changed, so the results on them do; the policy is the same.)
  assert.notEqual(rB.walkForward[0]!.windows[0]!.agents[0]!.sharpeRatio, s.windows[0]!.agents[0]!.sharpeRatio);

  // No look-ahead in decisions: window 1's trained policies on data changed after test day k decide
  // every day up to k as on the true data (the last k: the whole test window, returns included).
  for (const policy of ['llm', 'mlp']) {
    const run = runDir(out, plan.runs.find((p) => p.policy === policy && p.window!.test.start === w0!.test.start)!.id);
    const [truth] = await evaluateRun({ run, baselines: [] });
    for (const k of [0, 4, 9]) {
      const day = truth!.dates[k]!;
      const [seen] = await evaluateRun({ run, baselines: [], overrides: { data: marketFile(`changed-after-${day}`, day) } });
      assert.deepEqual(seen!.positions.slice(0, k + 1), truth!.positions.slice(0, k + 1), `${policy}: decisions up to ${day}`);
      assert.deepEqual(seen!.returns.slice(0, k), truth!.returns.slice(0, k), `${policy}: returns before ${day}`);
    }
  }

  // A second walk over the same folder trains nothing and reports the same numbers.
  const logs: string[] = [];
  const again = await walkForward(options(data, out, { workers: 1, log: (m) => logs.push(m) }));
  assert.equal(logs.filter((l) => /reusing the finished run/.test(l)).length, plan.runs.length);
  assert.deepEqual(JSON.parse(JSON.stringify(again.walkForward)), JSON.parse(JSON.stringify(r.walkForward)));
  // A folder of another window or data is never reused as this one.
  await assert.rejects(walkForward(options(changed, out, { workers: 1 })), /holds another run than SYN\/wf-\S+\/llm-seed1: data ".*\/market\/market\.json" there, ".*\/changed-after-train\/market\.json" here; choose another --out/);
});
