/**
 * What can the LLM policy's heads read? Two measurements on the built-in synthetic market, with the
 * model frozen (docs/learning.md, "Round 2"):
 *
 *   1. Linear probes of the vector the heads read (the pooled final hidden state of each day's prompt,
 *      account flat): ridge regressions fitted on the training span (the first 70% of days) that
 *      predict (a) the sign of the day's net sentiment tags and (b) the next day's log return; held-out
 *      accuracy of (a), held-out Sharpe ratio of trading the sign of (b). (b) is what a learner that
 *      only sees rewards can extract from the training span: the ceiling of reward-driven learning.
 *   2. `--ppo`: PPO on those frozen vectors, a fast stand-in for the LLM policy with nothing trainable
 *      below the heads: the MLP policy reading the vectors (standardised with the training span's
 *      statistics unless --raw) instead of its engineered features, for several seeds.
 *
 *   node --import tsx bench/probe.ts [--model flag-news-small] [--untagged] [--accuracy 0.85] [--json]
 *   node --import tsx bench/probe.ts --ppo [--raw] [--seeds 1,2,3] [KEY=VALUE ...]
 *
 * KEY=VALUE arguments are training-config fields of the PPO runs (e.g. ent_coef=0.1 total_timesteps=20000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { parseTrainConfig, type TrainConfig } from '../src/rl/config.js';
import { configField } from './config-field.js';
import { createLlmPolicy, registerPolicy } from '../src/rl/policies.js';
import { loadRunSeries, trainWindow } from '../src/rl/data.js';
import { TradingEnv } from '../src/env/trading-env.js';
import { MlpPolicy } from '../src/rl/mlp-policy.js';
import { streamRng } from '../src/rl/seeds.js';
import { runTraining } from '../src/rl/run.js';
import { evaluateRun } from '../src/eval/evaluate.js';
import { syntheticMarket } from '../src/data/synthetic.js';
import { nonNegativeNumber } from '../src/util/options.js';
import { seedListOption, seedOption } from '../src/util/seed.js';

interface ProbeOptions { model: string; untagged?: boolean; accuracy: number; marketSeed: number; json?: boolean; ppo?: boolean; raw?: boolean; norm: string; seeds: number[] }

const RIDGES = [1, 100, 10_000];

/** The pooled vector the heads read for every day of the series (account flat), by date. */
async function pooledVectors(c: TrainConfig): Promise<{ dates: string[]; x: Float64Array[] }> {
  const policy = await createLlmPolicy({ ...c, head_norm: 'none' }); // raw vectors: the probe standardises itself
  const { series } = await loadRunSeries(c);
  const env = new TradingEnv(series, { start: 'first', maxEpisodeSteps: series.dates.length, lookback: c.lookback });
  const dates: string[] = [], x: Float64Array[] = [];
  let obs = env.reset();
  for (;;) {
    const step = policy.forward(policy.encode(obs), true);
    x.push(Float64Array.from((step.handle as { hn: Float32Array }).hn));
    dates.push(obs.date);
    const res = env.step('hold');
    if (res.done) break;
    obs = res.observation;
  }
  return { dates, x };
}

/** Per-channel mean and std over rows [0, n). */
function moments(x: Float64Array[], n: number): { mean: Float64Array; std: Float64Array } {
  const C = x[0]!.length, mean = new Float64Array(C), std = new Float64Array(C);
  for (let i = 0; i < n; i++) for (let c = 0; c < C; c++) mean[c] += x[i]![c]! / n;
  for (let i = 0; i < n; i++) for (let c = 0; c < C; c++) std[c] += (x[i]![c]! - mean[c]!) ** 2 / n;
  for (let c = 0; c < C; c++) std[c] = Math.sqrt(std[c]!);
  return { mean, std };
}

/** Ridge regression on standardised features (intercept unpenalised), fitted on rows [0, n); returns a predictor. */
function ridge(x: Float64Array[], y: number[], n: number, lambda: number): (i: number) => number {
  const { mean, std } = moments(x, n);
  const C = x[0]!.length, D = C + 1;
  const row = (i: number) => { const r = new Float64Array(D); r[C] = 1; for (let c = 0; c < C; c++) r[c] = (x[i]![c]! - mean[c]!) / (std[c]! + 1e-8); return r; };
  const A = new Float64Array(D * D), b = new Float64Array(D);
  for (let i = 0; i < n; i++) {
    const r = row(i);
    for (let p = 0; p < D; p++) { b[p] += r[p]! * y[i]!; for (let q = 0; q < D; q++) A[p * D + q] += r[p]! * r[q]!; }
  }
  for (let p = 0; p < C; p++) A[p * D + p] += lambda;
  // Gaussian elimination with partial pivoting.
  for (let k = 0; k < D; k++) {
    let piv = k;
    for (let r = k + 1; r < D; r++) if (Math.abs(A[r * D + k]!) > Math.abs(A[piv * D + k]!)) piv = r;
    for (let q = 0; q < D; q++) { const t = A[k * D + q]!; A[k * D + q] = A[piv * D + q]!; A[piv * D + q] = t; }
    const t = b[k]!; b[k] = b[piv]!; b[piv] = t;
    for (let r = k + 1; r < D; r++) {
      const f = A[r * D + k]! / A[k * D + k]!;
      for (let q = k; q < D; q++) A[r * D + q] -= f * A[k * D + q]!;
      b[r] -= f * b[k]!;
    }
  }
  const w = new Float64Array(D);
  for (let k = D - 1; k >= 0; k--) { let s = b[k]!; for (let q = k + 1; q < D; q++) s -= A[k * D + q]! * w[q]!; w[k] = s / A[k * D + k]!; }
  return (i) => { const r = row(i); let s = 0; for (let p = 0; p < D; p++) s += r[p]! * w[p]!; return s; };
}

function sharpe(r: number[]): number {
  const m = r.reduce((a, b) => a + b, 0) / r.length;
  const s = Math.sqrt(r.reduce((a, b) => a + (b - m) ** 2, 0) / (r.length - 1));
  return s > 0 ? (m / s) * Math.sqrt(252) : 0;
}

/** The head's input for the stand-in: the frozen vectors centred and scaled with the training span's statistics. */
function normalise(x: Float64Array[], n: number, mean: Float64Array, std: Float64Array, norm: string): Float32Array[] {
  const C = x[0]!.length;
  if (norm === 'raw') return x.map((r) => Float32Array.from(r));
  if (norm === 'channel') return x.map((r) => Float32Array.from(r, (v, ch) => (v - mean[ch]!) / (std[ch]! + 1e-6)));
  if (norm === 'global') {
    const g = Math.sqrt(std.reduce((a, s) => a + s * s, 0) / C);
    return x.map((r) => Float32Array.from(r, (v, ch) => (v - mean[ch]!) / g));
  }
  const m = /^pca:(\d+)$/.exec(norm);
  if (!m) throw new Error(`--norm: expected channel, global, raw or pca:K, got ${JSON.stringify(norm)}`);
  const K = Number(m[1]);
  // Covariance of the training span, then its top K eigenvectors by Jacobi rotations (C is small).
  const A = Array.from({ length: C }, () => new Float64Array(C));
  for (let i = 0; i < n; i++) for (let a = 0; a < C; a++) { const da = x[i]![a]! - mean[a]!; for (let b = 0; b < C; b++) A[a]![b] += da * (x[i]![b]! - mean[b]!) / n; }
  const V = Array.from({ length: C }, (_, i) => { const r = new Float64Array(C); r[i] = 1; return r; });
  for (let sweep = 0; sweep < 30; sweep++) {
    let off = 0;
    for (let p = 0; p < C; p++) for (let q = p + 1; q < C; q++) off += A[p]![q]! ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < C; p++) for (let q = p + 1; q < C; q++) {
      const apq = A[p]![q]!; if (Math.abs(apq) < 1e-30) continue;
      const th = (A[q]![q]! - A[p]![p]!) / (2 * apq), t = Math.sign(th || 1) / (Math.abs(th) + Math.sqrt(th * th + 1)), c = 1 / Math.sqrt(t * t + 1), s = t * c;
      for (let k = 0; k < C; k++) { const akp = A[k]![p]!, akq = A[k]![q]!; A[k]![p] = c * akp - s * akq; A[k]![q] = s * akp + c * akq; }
      for (let k = 0; k < C; k++) { const apk = A[p]![k]!, aqk = A[q]![k]!; A[p]![k] = c * apk - s * aqk; A[q]![k] = s * apk + c * aqk; }
      for (let k = 0; k < C; k++) { const vkp = V[k]![p]!, vkq = V[k]![q]!; V[k]![p] = c * vkp - s * vkq; V[k]![q] = s * vkp + c * vkq; }
    }
  }
  const order = [...Array(C).keys()].sort((a, b) => A[b]![b]! - A[a]![a]!).slice(0, K);
  return x.map((r) => Float32Array.from(order, (e) => { let d = 0; for (let k = 0; k < C; k++) d += (r[k]! - mean[k]!) * V[k]![e]!; return d / Math.sqrt(A[e]![e]! + 1e-12); }));
}

async function probe(o: ProbeOptions, c: TrainConfig): Promise<void> {
  const { dates, x } = await pooledVectors(c);
  const { series } = await loadRunSeries(c);
  const tagged = syntheticMarket({ seed: c.synthetic_seed, days: c.synthetic_days, newsTags: true, newsAccuracy: c.synthetic_news_accuracy });
  const index = new Map(series.dates.map((d, i) => [d, i]));
  const t = dates.map((d) => index.get(d)!);
  const ret = t.map((i) => Math.log(series.prices[i + 1]! / series.prices[i]!));
  // The sentiment rule's sign from the TAGGED twin (same draws): defined for the untagged market too.
  const sent = t.map((i) => Math.sign((tagged.text?.[i] ?? []).reduce((s, it) => s + (/\(Sentiment: positive\)/.test(it.text) ? 1 : /\(Sentiment: negative\)/.test(it.text) ? -1 : 0), 0)));
  const n = dates.filter((d) => d <= trainWindow(series, c).end).length;
  const test = [...dates.keys()].filter((i) => i >= n);
  const { mean, std } = moments(x, n);
  const med = (a: number[]) => a.slice().sort((p, q) => p - q)[a.length >> 1]!;
  const rows = RIDGES.map((lambda) => {
    const fs = ridge(x, sent, n, lambda), fr = ridge(x, ret, n, lambda);
    const signed = test.filter((i) => sent[i] !== 0);
    return {
      ridge: lambda,
      sentimentAccuracy: signed.filter((i) => Math.sign(fs(i)) === sent[i]).length / signed.length,
      returnProbeSR: sharpe(test.map((i) => Math.sign(fr(i)) * ret[i]!)),
    };
  });
  const result = {
    model: c.model, tags: c.synthetic_news_tags, accuracy: c.synthetic_news_accuracy, trainDays: n, testDays: test.length,
    buyAndHoldSR: sharpe(test.map((i) => ret[i]!)), sentimentRuleSR: sharpe(test.map((i) => sent[i]! * ret[i]!)),
    medianChannelStd: med(Array.from(std)), medianAbsChannelMean: med(Array.from(mean, Math.abs)), rows,
  };
  if (o.json) { process.stdout.write(JSON.stringify(result) + '\n'); return; }
  process.stdout.write(`${c.model}, ${c.synthetic_news_tags ? 'tagged' : 'untagged'} news (${Math.round(100 * c.synthetic_news_accuracy)}% informative): fit on ${n} days, tested on ${test.length}\n`);
  process.stdout.write(`held-out SR: Buy & Hold ${result.buyAndHoldSR.toFixed(2)}, sentiment rule ${result.sentimentRuleSR.toFixed(2)}; channels: median std ${result.medianChannelStd.toFixed(3)}, median |mean| ${result.medianAbsChannelMean.toFixed(3)}\n`);
  for (const r of rows) process.stdout.write(`ridge ${r.ridge}: sentiment sign accuracy ${(100 * r.sentimentAccuracy).toFixed(1)}%, SR of the return probe ${r.returnProbeSR.toFixed(2)}\n`);
}

async function ppo(o: ProbeOptions, c: TrainConfig, fields: Record<string, unknown>): Promise<void> {
  const { dates, x } = await pooledVectors(c);
  const { series } = await loadRunSeries(c);
  const n = dates.filter((d) => d <= trainWindow(series, c).end).length;
  const { mean, std } = moments(x, n);
  const norm = o.raw ? 'raw' : o.norm;
  const z = normalise(x, n, mean, std, norm);
  const C = z[0]!.length;
  const byDate = new Map(dates.map((d, i) => [d, z[i]!]));
  // The MLP policy reads the frozen vectors instead of its engineered features (mlp_hidden sets its head).
  registerPolicy('mlp', (cfg) => new MlpPolicy({
    inputDim: C, featurize: (obs) => byDate.get(obs.date)!, hidden: cfg.mlp_hidden, rng: streamRng(cfg.seed, 'policy-init'),
    featureSet: `frozen ${c.model} pooled, ${norm}`,
  }));
  const dir = mkdtempSync(join(tmpdir(), 'flag-probe-'));
  const rows = [];
  try {
    for (const seed of o.seeds) {
      const cfg = parseTrainConfig({ ...c, policy: 'mlp', mlp_hidden: [64], seed, ...fields }, 'bench/probe');
      const out = join(dir, `seed${seed}`);
      await runTraining({ out, config: cfg });
      const [trained, bh] = await evaluateRun({ run: out, baselines: ['buy-and-hold'] });
      rows.push({ seed, sr: trained!.metrics.sharpeRatio, buyAndHold: bh!.metrics.sharpeRatio, long: trained!.positions.filter((p) => p === 1).length, short: trained!.positions.filter((p) => p === -1).length, flat: trained!.positions.filter((p) => p === 0).length });
      if (!o.json) { const r = rows[rows.length - 1]!; process.stdout.write(`seed ${seed}: held-out SR ${r.sr.toFixed(2)} (Buy & Hold ${r.buyAndHold.toFixed(2)}), long/short/flat ${r.long}/${r.short}/${r.flat}\n`); }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const meanSR = rows.reduce((a, r) => a + r.sr, 0) / rows.length;
  if (o.json) process.stdout.write(JSON.stringify({ model: c.model, norm, fields, rows, meanSR }) + '\n');
  else process.stdout.write(`mean held-out SR ${meanSR.toFixed(2)} over ${rows.length} seeds\n`);
}


await new Command('bench/probe.ts')
  .description('linear probes of what the LLM policy\'s heads read, and PPO on the frozen vectors (--ppo)')
  .argument('[fields...]', 'with --ppo: training-config fields, KEY=VALUE', configField, {})
  .option('--model <spec>', 'the frozen model', 'flag-news-small')
  .option('--untagged', 'headlines without their sentiment tag')
  .option('--accuracy <p>', 'share of headlines that carry the regime (the demo: 0.85)', nonNegativeNumber('--accuracy'), 0.85)
  .option('--market-seed <n>', 'synthetic market seed', seedOption('--market-seed'), 1)
  .option('--ppo', 'train PPO heads on the frozen vectors instead of fitting probes')
  .option('--raw', 'with --ppo: the raw vectors (default: standardised with the training span\'s statistics)')
  .option('--norm <kind>', 'with --ppo: channel (per-channel standardisation), global (centred, one scale for all channels), pca:K (the top K principal components of the training span, whitened)', 'channel')
  .option('--seeds <list>', 'with --ppo: training seeds', seedListOption('--seeds'), [1, 2, 3])
  .option('--json', 'print one JSON object')
  .action(async (fields: Record<string, unknown>, o: ProbeOptions) => {
    const c = parseTrainConfig({
      model: o.model, head_input: 'mean', prompt_style: 'compact', prompt_max_tokens: null, synthetic_days: 2000,
      synthetic_news_tags: !o.untagged, synthetic_news_accuracy: o.accuracy, synthetic_seed: o.marketSeed,
    }, 'bench/probe');
    if (o.ppo) await ppo(o, c, fields);
    else await probe(o, c);
  })
  .parseAsync();
