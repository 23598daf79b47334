// The shipped default LLM (models/flag-trader-small): what its metadata promises (the cutoff, the
// markets it read, its base) and what its pretraining taught it (its own answer follows the day's
// regime on a market it never read), checked on the weights themselves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MODEL, parseTrainConfig } from '../src/rl/config.js';
import { loadModel } from '../src/model/load.js';
import { LlmPolicy } from '../src/rl/llm-policy.js';
import { getBackend } from '../src/kernels/index.js';
import { generateSyntheticMarket } from '../src/data/synthetic.js';
import { marketTranscripts, regimeLabel } from '../src/pretrain/transcripts.js';
import { runPointInTime } from '../src/rl/point-in-time.js';
import { loadRunSeries } from '../src/rl/data.js';
import { ACTIONS } from '../src/env/types.js';

test('the default model records its cutoff, the markets it read (none that is evaluated) and its base', async () => {
  assert.equal(DEFAULT_MODEL, 'flag-trader-small');
  const m = await loadModel(DEFAULT_MODEL, {});
  assert.equal(m.source, 'folder');
  assert.equal(m.textCutoff, '2020-09-30');
  const seeds = m.meta!.synthetic_seeds as number[];
  assert.deepEqual([...seeds].sort(), [1001, 1002, 1003]);
  const base = m.meta!.base_model_meta as { text_cutoff: string; synthetic_seeds: number[] };
  assert.equal(base.text_cutoff, '2020-09-30');
  // The demo and the learning study use market seeds 1-9: none was read.
  for (let s = 1; s <= 9; s++) assert.ok(!seeds.includes(s), `seed ${s}`);
  // A run on a market it read is refused by the guard.
  const c = parseTrainConfig({ synthetic_seed: 1002, synthetic_days: 60 }, 'test');
  await assert.rejects(runPointInTime(c, (await loadRunSeries(c)).series), /pretrained on the headlines of synthetic market seed 1002/);
});

test('the default model answers the policy\'s prompt with the day\'s regime on a market it never read', { timeout: 120_000 }, async () => {
  const model = await loadModel(DEFAULT_MODEL, {});
  const policy = new LlmPolicy({ model, backend: getBackend(), trainableLayers: 2, head: 'lm', headInput: 'last', seed: 1, prompt: { mode: 'benchmark', style: 'compact' } });
  // The demo's market (seed 1, 85% informative news), held-out days, tags and no tags.
  for (const newsTags of [true, false]) {
    const { series, regimes } = generateSyntheticMarket({ seed: 1, days: 2000, newsAccuracy: 0.85, newsTags });
    const days = marketTranscripts(series, model.tokenizer, { labelOf: (t) => regimeLabel(regimes, t), lookback: 20, episodeSteps: 65, seed: 5, prompt: { style: 'compact' } })
      .filter((d) => d.t >= 1400 && d.t % 10 === 0);
    let right = 0;
    for (const d of days) {
      const lp = Array.from(policy.forward(policy.encode(d.observation), false).logProbs);
      const greedy = ACTIONS[lp.indexOf(Math.max(...lp))]; // logProbs are in ACTIONS order
      if (greedy === d.label) right++;
    }
    // A uniform or constant answer scores about a third; the regime is known only through the news and
    // the prices, so a reader is right on most days, not all.
    assert.ok(right / days.length > 0.6, `tags ${newsTags}: right on ${right} of ${days.length} days`);
  }
});
