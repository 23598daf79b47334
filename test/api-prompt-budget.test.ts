// Hostile input (issue 12): the API agent has the prompt style and budget options of training, applied
// the documented way (news cut first, src/prompt/budget.ts), in backtest (--prompt-style,
// --prompt-max-chars, --prompt-max-tokens with --prompt-tokenizer) and reproduce (--api-prompt-*).
// The replayed run: `backtest --agent openai` against `serve --model random:tiny` on JNJ, whose
// 2020-10-05 prompt is 7394 byte tokens, more than random:tiny's 4096.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { createApiAgentFromOptions } from '../src/agents/api-options.js';
import { ApiAgent } from '../src/agents/api-agent.js';
import { registerReproduce, zeroShotAgents } from '../src/cli/reproduce.js';
import { syntheticMarket } from '../src/data/synthetic.js';
import { backtest } from '../src/eval/backtest.js';
import { ByteTokenizer } from '../src/model/tokenizer.js';
import { PolicyServer } from '../src/serve/server.js';
import { modelScorer } from '../src/serve/policy-scorer.js';
import type { ActionScorer, ScorerMessage } from '../src/serve/scorer.js';
import { FakeEndpoint } from './api-fake-endpoint.js';
import { dataPath, needsData, repoRoot } from './shared-paths.js';

const run = promisify(execFile);
const skip = needsData('investorbench', 'jnj.json');

/** `serve --model random:tiny`, recording the messages of every chat request. */
async function tinyServer(): Promise<{ server: PolicyServer; url: string; seen: ScorerMessage[][] }> {
  const inner = await modelScorer('random:tiny');
  const seen: ScorerMessage[][] = [];
  const scorer: ActionScorer = {
    id: inner.id,
    scoreObservation: (obs) => inner.scoreObservation(obs),
    scorePrompt: (messages) => { seen.push(messages); return inner.scorePrompt!(messages); },
  };
  const server = new PolicyServer({ scorer });
  return { server, url: await server.listen(), seen };
}

/** backtest --agent openai on JNJ from 2020-10-01 to 2020-10-06 (decisions on 10-01, 10-02 and 10-05). */
function jnjBacktest(url: string, extra: string[]) {
  return run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'backtest', '--agent', 'openai', '--json',
    '--data', dataPath('investorbench', 'jnj.json'), '--start', '2020-10-01', '--end', '2020-10-06',
    '--base-url', `${url}/v1`, '--api-model', 'random:tiny', '--api-max-retries', '0', ...extra], { cwd: repoRoot() });
}

test('backtest --agent openai against serve --model random:tiny on JNJ: without a budget the 400 says how to set one; --prompt-max-chars cuts the news and the run finishes', { skip, timeout: 240_000 }, async () => {
  const { server, url, seen } = await tinyServer();
  try {
    await assert.rejects(jnjBacktest(url, []), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, /the prompt is 7394 tokens; this model takes at most 4096/);
      assert.match(e.stderr, /--prompt-max-chars, or --prompt-max-tokens with --prompt-tokenizer/);
      return true;
    });
    seen.length = 0;
    const { stdout } = await jnjBacktest(url, ['--prompt-max-chars', '3000']);
    const rec = JSON.parse(stdout) as { prices: number; positions: number[] };
    assert.equal(rec.prices, 4);
    assert.equal(seen.length, 3, 'one request per decision');
    for (const m of seen) assert.ok(m[0]!.content.length + m[1]!.content.length <= 3000, 'every prompt within the budget');
    // 2020-10-05 has 7 news items: whole items are dropped from the end first, the instructions stay whole.
    const oct5 = seen[2]![1]!.content;
    assert.match(oct5, /^Market state of JNJ on 2020-10-05:/);
    assert.match(oct5, /\n1\. .*\n\(\d more news items omitted\)\n/s);
    assert.match(seen[2]![0]!.content, /^You are a trading agent for JNJ\./);
  } finally {
    await server.close();
  }
});

test('backtest --prompt-style compact --prompt-max-tokens with --prompt-tokenizer bytes: token budgets counted with the given tokenizer', { skip, timeout: 240_000 }, async () => {
  const { server, url, seen } = await tinyServer();
  try {
    const { stdout } = await jnjBacktest(url, ['--prompt-style', 'compact', '--prompt-max-tokens', '1200', '--prompt-tokenizer', 'bytes']);
    assert.equal((JSON.parse(stdout) as { prices: number }).prices, 4);
    const bytes = new ByteTokenizer();
    assert.equal(seen.length, 3);
    for (const m of seen) {
      assert.ok(bytes.encode(m[0]!.content).length + bytes.encode(m[1]!.content).length <= 1200);
      assert.match(m[0]!.content, /^Trade JNJ daily/, 'the compact instructions');
    }
    assert.match(seen[2]![1]!.content, /\(\d more omitted\)/);
  } finally {
    await server.close();
  }
});

test('API agent prompt flags: wrong values and a token budget without a tokenizer are refused naming the flag', () => {
  const base = { baseUrl: 'http://127.0.0.1:9/v1', apiModel: 'm' };
  assert.throws(() => createApiAgentFromOptions({ ...base, promptStyle: 'long' }), /--prompt-style: expected full \| compact, got "long"/);
  assert.throws(() => createApiAgentFromOptions({ ...base, promptMaxChars: '0' }), /--prompt-max-chars: expected an integer >= 1, got "0"/);
  assert.throws(() => createApiAgentFromOptions({ ...base, promptMaxTokens: '100' }), /--prompt-max-tokens needs --prompt-tokenizer/);
  assert.throws(() => createApiAgentFromOptions({ ...base, promptTokenizer: 'bytes' }), /--prompt-tokenizer only counts tokens for --prompt-max-tokens/);
  assert.throws(() => createApiAgentFromOptions({ ...base, promptMaxTokens: '100', promptTokenizer: '/nonexistent/tokenizer.json' }), /--prompt-tokenizer: \/nonexistent\/tokenizer.json does not exist/);
  assert.ok(createApiAgentFromOptions({ ...base, promptMaxTokens: '100', promptTokenizer: 'bytes' }) instanceof ApiAgent);
});

test('reproduce: the zero-shot agent takes --api-prompt-* (its --prompt-* flags set the trained LLM), and words its prompt for the run\'s mode', async () => {
  const program = new Command();
  registerReproduce(program);
  const longs = program.commands.find((c) => c.name() === 'reproduce')!.options.map((o) => o.long);
  for (const f of ['--api-prompt-style', '--api-prompt-max-chars', '--api-prompt-max-tokens', '--api-prompt-tokenizer', '--prompt-style', '--prompt-max-tokens']) {
    assert.ok(longs.includes(f), f);
  }
  assert.throws(() => zeroShotAgents({ baseUrl: 'http://127.0.0.1:9/v1', apiModel: 'm', apiPromptMaxTokens: '100' }), /--api-prompt-max-tokens needs --api-prompt-tokenizer/);

  const endpoint = new FakeEndpoint();
  await endpoint.start();
  try {
    const [extra] = zeroShotAgents({ baseUrl: endpoint.url, apiModel: 'm', apiPromptStyle: 'compact', apiPromptMaxChars: '400' });
    const series = syntheticMarket({ seed: 3, days: 60 });
    await backtest(series, extra!.create({ mode: 'account', allowShort: false }), { start: series.dates[30]!, end: series.dates[33]!, mode: 'account' });
    assert.equal(endpoint.requests.length, 3);
    for (const r of endpoint.requests) {
      const messages = r.body.messages as Array<{ content: string }>;
      assert.ok(messages[0]!.content.length + messages[1]!.content.length <= 400);
      assert.match(messages[0]!.content, /buy = all cash into shares/, 'compact instructions worded for account mode');
    }
  } finally {
    await endpoint.stop();
  }
});
