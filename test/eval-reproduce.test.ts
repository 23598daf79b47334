// reproduce over the shared assets with a short training budget: the report's rows, the Buy & Hold row
// against the raw file, crypto annualisation for BTC, and a second invocation that reuses finished runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reproduce, type ReproduceOptions } from '../src/pipeline/reproduce.js';
import { PAPER_PROTOCOL, protocolAssets } from '../src/eval/protocol.js';
import { ANNUALIZATIONS } from '../src/eval/metrics.js';
import { dataPath, needsData } from './shared-paths.js';

const BASE = {
  model: 'random:tiny', trainable_layers: 1, prompt_style: 'compact', prompt_max_tokens: 600,
  total_timesteps: 40, num_steps: 20, minibatch_size: 20, gradient_accumulation_steps: 4, update_epochs: 1, head_input: 'last',
};

function options(out: string, logs: string[]): ReproduceOptions {
  const targets = protocolAssets(['MSFT', 'BTC']).map((p) => ({
    asset: p.asset, data: dataPath(p.file), format: p.format, annualization: { ...ANNUALIZATIONS[p.annualization] },
    train: p.train, test: p.test,
  }));
  return {
    out, title: 'test', targets, seeds: [1], base: BASE, mlpAblation: true, untrained: true,
    baselines: ['momentum'], bootstrapResamples: 100, log: (m) => logs.push(m),
  };
}

test('protocol: the paper windows; unknown assets are named', () => {
  assert.deepEqual(PAPER_PROTOCOL.map((p) => p.asset), ['MSFT', 'JNJ', 'UVV', 'HON', 'TSLA', 'BTC']);
  assert.equal(protocolAssets(['btc'])[0]!.annualization, 'crypto');
  assert.throws(() => protocolAssets(['NFLX']), /unknown asset "NFLX" for the paper protocol; known: MSFT, JNJ, UVV, HON, TSLA, BTC/);
});

test('reproduce MSFT + BTC, short budget: report rows, B&H from the raw file, reuse on a second run',
  { skip: needsData('investorbench', 'btc.json'), timeout: 300_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'reproduce-'));
    try {
      const logs: string[] = [];
      const r = await reproduce(options(out, logs));
      for (const f of ['report.md', 'report.html', 'report.json', 'results.json']) assert.ok(existsSync(join(out, f)), f);
      assert.deepEqual(r.summaries.map((s) => s.asset), ['MSFT', 'BTC']);
      const msft = r.summaries[0]!;
      assert.equal(msft.start, '2020-10-01');
      assert.equal(msft.end, '2021-05-05');
      assert.deepEqual(msft.agents.map((a) => [a.name, a.cumulativeReturn.n]), [
        ['buy-and-hold', 1], ['flag-trader (PPO LLM)', 1], ['PPO MLP (ablation)', 1], ['LLM policy, untrained', 1], ['momentum', 1],
      ]);
      const raw = JSON.parse(readFileSync(dataPath('investorbench', 'msft.json'), 'utf8')) as Record<string, { prices: number }>;
      const cr = 100 * Math.log(raw['2021-05-05']!.prices / raw['2020-10-01']!.prices);
      assert.ok(Math.abs(msft.agents[0]!.cumulativeReturn.mean - cr) < 1e-9, `${msft.agents[0]!.cumulativeReturn.mean} vs ${cr}`);
      // BTC uses A_vol = 365: AV of Buy & Hold = std(daily log returns) * sqrt(365), from the raw file.
      const btc = JSON.parse(readFileSync(dataPath('investorbench', 'btc.json'), 'utf8')) as Record<string, { prices: number }>;
      const days = Object.keys(btc).filter((d) => d >= '2023-04-05' && d <= '2023-11-05').sort();
      const rets = days.slice(1).map((d, i) => Math.log(btc[d]!.prices / btc[days[i]!]!.prices));
      const m = rets.reduce((a, b) => a + b, 0) / rets.length;
      const sd = Math.sqrt(rets.reduce((a, b) => a + (b - m) ** 2, 0) / (rets.length - 1));
      assert.ok(Math.abs(r.summaries[1]!.agents[0]!.annualizedVolatility.mean - 100 * sd * Math.sqrt(365)) < 1e-9);
      const md = readFileSync(join(out, 'report.md'), 'utf8');
      assert.match(md, /## BTC: 2023-04-05 \.\. 2023-11-05/);
      assert.match(md, /\| flag-trader \(PPO LLM\) \| 1 \| -?\d+\.\d+ \| -?\d+\.\d+ \|/);
      assert.ok(existsSync(join(out, 'runs', 'BTC', 'llm-seed1', 'policy.safetensors')));

      // A second invocation trains nothing and gives the same report numbers.
      const again: string[] = [];
      const r2 = await reproduce(options(out, again));
      assert.equal(again.filter((l) => /reusing the finished run/.test(l)).length, 4);
      assert.deepEqual(JSON.parse(JSON.stringify(r2.summaries)), JSON.parse(JSON.stringify(r.summaries)));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
