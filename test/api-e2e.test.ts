// End to end: an ApiAgent pointed at `flag-trader serve`'s server (baseUrl = its /v1) backtests a
// synthetic window through the official openai client; the reply cache makes a re-run request-free.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiAgent } from '../src/agents/api-agent.js';
import { createApiAgentFromOptions } from '../src/agents/api-options.js';
import { MomentumAgent } from '../src/agents/baselines.js';
import { syntheticMarket } from '../src/data/synthetic.js';
import { backtest } from '../src/eval/backtest.js';
import { renderPrompt } from '../src/prompt/render.js';
import { PolicyServer } from '../src/serve/server.js';
import { createScorer } from '../src/serve/scorers.js';
import type { ActionScorer, ScorerMessage } from '../src/serve/scorer.js';

const series = syntheticMarket({ seed: 7, days: 120 });
const window = { start: series.dates[30]!, end: series.dates[89]! }; // 60 prices, 59 decisions, 30 days of history before

test('ApiAgent -> server with the momentum baseline scorer: the same positions as the momentum agent; a cached re-run sends nothing', async () => {
  const server = new PolicyServer({ scorer: await createScorer('agent', { agent: 'momentum' }), apiKey: 'k' });
  const url = await server.listen();
  const cacheDir = mkdtempSync(join(tmpdir(), 'api-e2e-'));
  try {
    const direct = await backtest(series, new MomentumAgent(20), window);
    const opts = {
      baseUrl: `${url}/v1`, model: 'baseline-momentum', attachObservation: true, cacheDir,
      apiKeyEnv: 'E2E_KEY', env: { E2E_KEY: 'k' },
    };
    const first = new ApiAgent(opts);
    const r1 = await backtest(series, first, window);
    assert.equal(r1.prices, 60);
    assert.deepEqual(r1.positions, direct.positions);
    assert.ok(new Set(direct.positions).size >= 2, 'the window has more than one kind of position');
    assert.deepEqual(r1.metrics, direct.metrics);
    const s1 = first.stats;
    assert.equal(s1.decisions, 59);
    assert.equal(s1.requests, 59);
    assert.equal(s1.unparseable, 0);
    assert.equal(s1.fallbacks, 0);
    const served = server.stats.requests;
    assert.equal(served, 59);

    const second = new ApiAgent(opts);
    const r2 = await backtest(series, second, window);
    assert.equal(server.stats.requests, served, 'the cached re-run made zero requests');
    assert.equal(second.stats.cacheHits, 59);
    assert.deepEqual(r2.positions, r1.positions);
    assert.deepEqual(r2.returns, r1.returns);
  } finally {
    await server.close();
    rmSync(cacheDir, { recursive: true, force: true });
  }
});

test('ApiAgent from CLI-style options -> a prompt-reading scorer: the rendered prompt reaches the scorer and its argmax comes back', async () => {
  // A stand-in policy that reads the prompt: buy when the user message shows a positive 5-day return.
  const seen: ScorerMessage[][] = [];
  const scorer: ActionScorer = {
    id: 'reader',
    scorePrompt(messages) {
      seen.push(messages);
      const up = /5-day \+/.test(messages[messages.length - 1]!.content);
      return up ? { buy: 0.7, sell: 0.1, hold: 0.2 } : { buy: 0.1, sell: 0.2, hold: 0.7 };
    },
    scoreObservation() { throw new Error('not used'); },
  };
  const server = new PolicyServer({ scorer });
  const url = await server.listen();
  try {
    const agent = createApiAgentFromOptions({ baseUrl: `${url}/v1`, apiModel: 'reader', temperature: '0', maxTokens: '16', jsonMode: true });
    const r = await backtest(series, agent, { start: series.dates[30]!, end: series.dates[45]! });
    assert.equal(seen.length, 15);
    assert.deepEqual(new Set(r.positions), new Set([0, 1]), 'both answers occur in the window');
    assert.equal(agent.stats.jsonModeDropped, false);
    // Check each decision against the prompt the scorer saw, and that prompt against renderPrompt.
    const decisions = (agent as ApiAgent).decisions;
    for (let i = 0; i < 15; i++) {
      const user = seen[i]![1]!.content;
      const expected = /5-day \+/.test(user) ? 1 : 0;
      assert.equal(r.positions[i], expected, `day ${i}`);
      assert.equal(decisions[i]!.action, expected === 1 ? 'buy' : 'hold');
    }
    const firstObsPrompt = renderPrompt({
      asset: series.asset, date: series.dates[30]!, t: 30, step: 0,
      dates: series.dates.slice(10, 31), prices: Array.from(series.prices.slice(10, 31)), text: series.text![30]!,
      account: { position: 0, cash: 1, shares: 0, value: 1, cumulativeReturn: 0 },
    });
    assert.equal(seen[0]![0]!.content, firstObsPrompt.system);
  } finally {
    await server.close();
  }
});
