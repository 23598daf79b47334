// Hostile input (issue 12): `serve --model M` renders /v1/act prompts within a budget that fits the
// model (news cut first, src/prompt/budget.ts), and what it still cannot serve is a 4xx, never a 500.
// The replayed day: MSFT 2020-04-09 of INVESTOR-BENCH, whose full prompt is 5805 byte tokens, more than
// random:tiny's 4096.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loadSeries } from '../src/data/load.js';
import { TradingEnv } from '../src/env/trading-env.js';
import { ACTIONS, type Observation } from '../src/env/types.js';
import { getBackend } from '../src/kernels/index.js';
import { loadModel } from '../src/model/load.js';
import { ByteTokenizer } from '../src/model/tokenizer.js';
import { toChatMessages } from '../src/prompt/chat.js';
import { renderPrompt } from '../src/prompt/render.js';
import { LlmPolicy } from '../src/rl/llm-policy.js';
import { scorerFromFlags, type ServeFlags } from '../src/cli/serve.js';
import { PolicyServer, SERVE_DEFAULTS } from '../src/serve/server.js';
import { chatTemplateTokens, defaultPromptMaxTokens, modelScorer, policyScorer } from '../src/serve/policy-scorer.js';
import type { ActionScorer } from '../src/serve/scorer.js';
import { dataPath, needsData, repoRoot } from './shared-paths.js';

const skip = needsData('investorbench', 'msft.json');
const FLAGS: ServeFlags = {
  host: '127.0.0.1', port: 0, maxBodyBytes: SERVE_DEFAULTS.maxBodyBytes, maxPromptChars: SERVE_DEFAULTS.maxPromptChars,
  seed: 0, shutdownGraceMs: 100,
};

async function msftDay(): Promise<Observation> {
  const series = await loadSeries({ path: dataPath('investorbench', 'msft.json'), format: 'investorbench' });
  const t = series.dates.indexOf('2020-04-09');
  assert.ok(t > 0);
  return new TradingEnv(series, { lookback: 20, start: 'first', windowStart: t }).reset();
}

interface Answer { status: number; body: { action?: string; probabilities?: Record<string, number>; action_probabilities?: Record<string, number>; error?: { message: string; code: string | null; param: string | null } } }

async function withServer<T>(scorer: ActionScorer, fn: (post: (path: string, body: unknown) => Promise<Answer>) => Promise<T>): Promise<T> {
  const server = new PolicyServer({ scorer });
  const url = await server.listen();
  try {
    return await fn(async (path, body) => {
      const r = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.status, body: await r.json() as Answer['body'] };
    });
  } finally {
    await server.close();
  }
}

test('serve --model random:tiny: /v1/act on MSFT 2020-04-09 (5805 tokens unbudgeted) answers 200 with the news cut to the default budget', { skip, timeout: 120_000 }, async () => {
  const obs = await msftDay();
  const bytes = new ByteTokenizer();
  const full = renderPrompt(obs, {});
  const fullTokens = bytes.encode(bytes.applyChatTemplate(toChatMessages(full), true) + '{"action": "').length;
  assert.equal(fullTokens, 5805, 'the replayed day is over the model\'s 4096 tokens without a budget');
  // The default budget: the context less the chat template (measured) and a margin.
  const budget = defaultPromptMaxTokens(4096, bytes);
  assert.equal(budget, 4096 - chatTemplateTokens(bytes) - 16);
  const cut = renderPrompt(obs, { maxTokens: budget, countTokens: (s) => bytes.encode(s).length });
  assert.ok(cut.truncated.newsDropped > 0, 'whole news items are dropped first');
  assert.equal(cut.truncated.filingsDropped, 0);
  assert.match(cut.user, /\(\d+ more news items? omitted\)/);

  await withServer(await scorerFromFlags({ ...FLAGS, model: 'random:tiny' }), async (post) => {
    const act = await post('/v1/act', { observation: obs });
    assert.equal(act.status, 200, JSON.stringify(act.body));
    assert.ok(ACTIONS.includes(act.body.action as never));
    // /v1/act scored exactly the budgeted prompt: the same probabilities as a chat request carrying it.
    const chat = await post('/v1/chat/completions', { model: 'random:tiny', messages: toChatMessages(cut) });
    assert.equal(chat.status, 200);
    for (const a of ACTIONS) assert.ok(Math.abs(act.body.probabilities![a]! - chat.body.action_probabilities![a]!) < 1e-6, a);
  });
});

test('serve --model: what cannot be served is a 400 naming the sizes and the flags, never a 500', { skip, timeout: 120_000 }, async () => {
  const obs = await msftDay();
  // No budget (--prompt-max-tokens none): over the model's context.
  await withServer(await scorerFromFlags({ ...FLAGS, model: 'random:tiny', promptMaxTokens: null }), async (post) => {
    const r = await post('/v1/act', { observation: obs });
    assert.equal(r.status, 400);
    assert.equal(r.body.error!.code, 'context_length_exceeded');
    assert.match(r.body.error!.message, /the prompt is 5805 tokens; this model takes at most 4096 .*--prompt-max-tokens none/);
  });
  // A budget smaller than the parts that are never cut.
  await withServer(await scorerFromFlags({ ...FLAGS, model: 'random:tiny', promptMaxChars: 500 }), async (post) => {
    const r = await post('/v1/act', { observation: obs });
    assert.equal(r.status, 400);
    assert.equal(r.body.error!.code, 'context_length_exceeded');
    assert.match(r.body.error!.message, /never cut .* need \d+ characters but maxChars is 500.*--prompt-max-chars 500/);
    // An observation the renderer refuses (a blank news item passes the schema): 400 naming the field.
    const blank = await post('/v1/act', { observation: { ...obs, text: [{ kind: 'news', text: '   ' }] } });
    assert.equal(blank.status, 400);
    assert.equal(blank.body.error!.param, 'observation');
    assert.match(blank.body.error!.message, /text\[0\] \(news\) is empty/);
  });
});

test('serve --max-prompt-chars applies to /v1/act prompts: --model cuts the news to it, a run that renders more is refused', { skip, timeout: 120_000 }, async () => {
  const obs = await msftDay();
  await withServer(await scorerFromFlags({ ...FLAGS, model: 'random:tiny', maxPromptChars: 3000 }), async (post) => {
    const act = await post('/v1/act', { observation: obs });
    assert.equal(act.status, 200, JSON.stringify(act.body));
    const cut = renderPrompt(obs, { maxChars: 3000 });
    assert.ok(cut.system.length + cut.user.length <= 3000 && cut.truncated.newsDropped > 0);
    const chat = await post('/v1/chat/completions', { model: 'random:tiny', messages: toChatMessages(cut) });
    for (const a of ACTIONS) assert.ok(Math.abs(act.body.probabilities![a]! - chat.body.action_probabilities![a]!) < 1e-6, a);
  });
  // A policy with its own (here: no) budget, as a trained run has: refused above the server's limit.
  const policy = new LlmPolicy({ model: await loadModel('random:tiny'), backend: getBackend(), trainableLayers: 1, head: 'lm', headInput: 'last', seed: 0, prompt: {} });
  await withServer(policyScorer(policy, 'run', { maxPromptChars: 3000 }), async (post) => {
    const r = await post('/v1/act', { observation: obs });
    assert.equal(r.status, 400);
    assert.equal(r.body.error!.code, 'context_length_exceeded');
    assert.match(r.body.error!.message, /rendered prompt has \d+ characters, more than this server's limit of 3000 \(--max-prompt-chars\)/);
  });
});

test('serve: the prompt flags are checked: --prompt-max-tokens above the model\'s room, and --prompt-* without --model, are refused', { timeout: 120_000 }, async () => {
  await assert.rejects(modelScorer('random:tiny', { promptMaxTokens: 5000 }), /--prompt-max-tokens 5000 does not fit random:tiny: the model takes at most 4096 tokens .* give at most \d+/);
  await assert.rejects(scorerFromFlags({ ...FLAGS, agent: 'momentum', promptMaxChars: 100 }), /--prompt-max-chars applies only to --model/);
  await assert.rejects(scorerFromFlags({ ...FLAGS, agent: 'momentum', promptStyle: 'compact', promptMaxTokens: null }), /--prompt-style, --prompt-max-tokens apply only to --model/);
  // The real command line: `none` parses, a bad value names the flag.
  const run = promisify(execFile);
  await assert.rejects(run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--model', 'random:tiny', '--prompt-max-tokens', 'lots'], { cwd: repoRoot() }),
    (e: { code: number; stderr: string }) => { assert.equal(e.code, 1); assert.match(e.stderr, /--prompt-max-tokens: expected a positive integer or none, got "lots"/); return true; });
  await assert.rejects(run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--model', 'random:tiny', '--prompt-max-tokens', '4090'], { cwd: repoRoot() }),
    (e: { code: number; stderr: string }) => { assert.equal(e.code, 1); assert.match(e.stderr, /does not fit random:tiny/); return true; });
});
