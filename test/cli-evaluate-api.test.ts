// evaluate with an API agent among its baselines (issue 12): it takes the API agent's flags as backtest
// does, prompt budget included, and the agent words its prompt in the run's mode.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { parseTrainConfig } from '../src/rl/config.js';
import { runTraining } from '../src/rl/run.js';
import { evaluateRun } from '../src/eval/evaluate.js';
import { registerTrain } from '../src/cli/train.js';
import { completion, FakeEndpoint } from './api-fake-endpoint.js';

const TMP = mkdtempSync(join(tmpdir(), 'eval-api-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

test('evaluate --baselines openai: the API agent runs beside the policy with its flags; --prompt-max-chars bounds every prompt', async () => {
  const run = join(TMP, 'mlp');
  await runTraining({ out: run, config: parseTrainConfig({ policy: 'mlp', synthetic_days: 200, total_timesteps: 400, num_steps: 100 }, 'test') });
  const ep = new FakeEndpoint(() => completion('{"action": "sell"}'));
  await ep.start();
  try {
    const results = await evaluateRun({
      run, baselines: ['buy-and-hold', 'openai'],
      agentOptions: { baseUrl: ep.url, apiModel: 'fake', apiKeyEnv: 'NO_SUCH_KEY_VARIABLE', promptMaxChars: '600', promptStyle: 'compact' },
    });
    assert.deepEqual(results.map((r) => r.agent.startsWith('ppo') ? 'ppo' : r.agent.split('(')[0]), ['ppo', 'buy-and-hold', 'api:fake']);
    const api = results[2]!;
    assert.equal(ep.requests.length, api.positions.length, 'one request per test day');
    assert.ok(api.positions.every((p) => p === -1), 'the endpoint\'s answer is followed');
    for (const r of ep.requests) {
      const msgs = r.body.messages as Array<{ content: string }>;
      const chars = msgs.reduce((a, m) => a + m.content.length, 0);
      assert.ok(chars <= 600, `prompt of ${chars} characters over the 600 budget`);
    }
  } finally {
    await ep.stop();
  }
});

test('evaluate accepts the API agent flags (the same names as backtest)', async () => {
  const program = new Command().exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  registerTrain(program);
  const evaluate = program.commands.find((c) => c.name() === 'evaluate')!;
  const flags = evaluate.options.map((o) => o.long);
  for (const f of ['--base-url', '--api-model', '--prompt-style', '--prompt-max-chars', '--prompt-max-tokens', '--prompt-tokenizer', '--api-cache']) {
    assert.ok(flags.includes(f), `evaluate lacks ${f}`);
  }
});
