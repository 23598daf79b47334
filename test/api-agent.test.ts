// ApiAgent against a scripted fake endpoint: retries and Retry-After, unreadable replies and the
// fallback, timeouts, JSON-mode fallback, auth header, concurrency limit, the reply cache and the log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiAgent, type ApiAgentOptions } from '../src/agents/api-agent.js';
import { ApiRequestError } from '../src/agents/api-retry.js';
import { renderPrompt } from '../src/prompt/render.js';
import { Rng } from '../src/util/rng.js';
import { FakeEndpoint, apiError, completion, makeObservation } from './api-fake-endpoint.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'api-agent-'));
}

/** An agent whose waits are recorded instead of slept, so retry tests take no wall time. */
function agentFor(ep: FakeEndpoint, opts: Partial<ApiAgentOptions> = {}) {
  const waits: number[] = [];
  const agent = new ApiAgent({
    baseUrl: ep.url, model: 'fake-model', env: {}, timeoutMs: 5000,
    sleep: async (ms) => { waits.push(ms); },
    ...opts,
  });
  return { agent, waits };
}

test('a valid reply becomes the action; the request carries the rendered prompt and the settings', async () => {
  const ep = new FakeEndpoint();
  await ep.start();
  try {
    ep.push(completion('{"action": "buy"}'));
    const { agent } = agentFor(ep, { temperature: 0.3, maxTokens: 20, requestSeed: 7 });
    const obs = makeObservation(0);
    assert.equal(await agent.act(obs), 'buy');
    assert.equal(ep.requests.length, 1);
    const req = ep.requests[0]!;
    assert.equal(req.path, '/v1/chat/completions');
    assert.equal(req.body.model, 'fake-model');
    assert.equal(req.body.temperature, 0.3);
    assert.equal(req.body.max_tokens, 20);
    assert.equal(req.body.seed, 7);
    assert.equal(req.body.response_format, undefined);
    assert.equal(req.body.observation, undefined, 'the observation is only sent when asked for');
    const rendered = renderPrompt(obs);
    assert.deepEqual(req.body.messages, [{ role: 'system', content: rendered.system }, { role: 'user', content: rendered.user }]);
    assert.deepEqual(agent.stats, {
      decisions: 1, calls: 1, cacheHits: 0, requests: 1, retries: 0, unparseable: 0, fallbacks: 0, apiErrors: 0, jsonModeDropped: false,
    });
    const d = agent.decisions[0]!;
    assert.equal(d.date, obs.date);
    assert.equal(d.calls[0]!.reply, '{"action": "buy"}');
    assert.deepEqual(d.calls[0]!.parsed, { ok: true, action: 'buy', how: 'json' });
    assert.equal(d.calls[0]!.cached, false);
    assert.ok(d.calls[0]!.latencyMs >= 0);
  } finally {
    await ep.stop();
  }
});

test('no key in the environment: no Authorization header; a key: Bearer KEY from the named variable', async () => {
  const ep = new FakeEndpoint();
  await ep.start();
  try {
    await agentFor(ep, { apiKeyEnv: 'MY_KEY', env: {} }).agent.act(makeObservation(0));
    assert.equal(ep.requests[0]!.headers.authorization, undefined);
    await agentFor(ep, { apiKeyEnv: 'MY_KEY', env: { MY_KEY: 'sk-test-123' } }).agent.act(makeObservation(0));
    assert.equal(ep.requests[1]!.headers.authorization, 'Bearer sk-test-123');
    await agentFor(ep, { env: { OPENAI_API_KEY: 'sk-default' } }).agent.act(makeObservation(0));
    assert.equal(ep.requests[2]!.headers.authorization, 'Bearer sk-default');
  } finally {
    await ep.stop();
  }
});

test('429 with Retry-After, then 500, then a valid reply: two retries, the first wait is the server\'s', async () => {
  const ep = new FakeEndpoint();
  await ep.start();
  try {
    ep.push(apiError(429, 'slow down', { 'Retry-After': '2' }), apiError(500, 'boom'), completion('{"action":"sell"}'));
    const seed = 11;
    const backoff = { baseMs: 400, maxMs: 10_000 };
    const { agent, waits } = agentFor(ep, { jitterSeed: seed, backoff });
    assert.equal(await agent.act(makeObservation(0)), 'sell');
    assert.equal(ep.requests.length, 3);
    assert.equal(agent.stats.retries, 2);
    assert.equal(agent.stats.requests, 3);
    // First wait: Retry-After: 2 -> 2000 ms exactly. Second (retry index 1, no Retry-After): equal jitter,
    // cap = 400 * 2^1 = 800, delay = 400 + u * 400 with u the first draw of Rng(11).
    const u = new Rng(seed).uniform();
    assert.equal(waits.length, 2);
    assert.equal(waits[0], 2000);
    assert.ok(Math.abs(waits[1]! - (400 + u * 400)) < 1e-9, `second wait ${waits[1]}`);
    const call = agent.decisions[0]!.calls[0]!;
    assert.equal(call.requests, 3);
    assert.deepEqual(call.retries.map((r) => [r.reason, r.fromRetryAfter]), [['HTTP 429', true], ['HTTP 500', false]]);
  } finally {
    await ep.stop();
  }
});

test('Retry-After is really waited for with the real sleep (retry-after-ms 150)', async () => {
  const ep = new FakeEndpoint();
  await ep.start();
  try {
    ep.push(apiError(503, 'busy', { 'retry-after-ms': '150' }), completion('{"action":"hold"}'));
    const agent = new ApiAgent({ baseUrl: ep.url, model: 'm', env: {} });
    assert.equal(await agent.act(makeObservation(0)), 'hold');
    const gap = ep.requests[1]!.at - ep.requests[0]!.at;
    assert.ok(gap >= 140, `second request came ${gap.toFixed(0)} ms after the first`);
  } finally {
    await ep.stop();
  }
});

test('retries run out: ApiRequestError naming the endpoint and attempts; onApiError fallback takes the fallback and counts it', async () => {
  const ep = new FakeEndpoint(() => apiError(500, 'always broken'));
  await ep.start();
  try {
    const { agent, waits } = agentFor(ep, { maxRetries: 2 });
    await assert.rejects(agent.act(makeObservation(0)), (err: unknown) => {
      assert.ok(err instanceof ApiRequestError);
      assert.match(err.message, /chat\/completions \(model fake-model\): request failed after 3 attempt\(s\), last error HTTP 500: 500 always broken/);
      assert.equal(err.attempts, 3);
      return true;
    });
    assert.equal(ep.requests.length, 3);
    assert.equal(waits.length, 2);
    // Equal-jitter backoff grows: retry 0 in [250, 500), retry 1 in [500, 1000) with the default base 500.
    assert.ok(waits[0]! >= 250 && waits[0]! < 500, `wait 0 = ${waits[0]}`);
    assert.ok(waits[1]! >= 500 && waits[1]! < 1000, `wait 1 = ${waits[1]}`);

    const fb = agentFor(ep, { maxRetries: 0, onApiError: 'fallback', fallback: 'sell' }).agent;
    assert.equal(await fb.act(makeObservation(0)), 'sell');
    assert.equal(fb.stats.apiErrors, 1);
    assert.equal(fb.stats.fallbacks, 1);
    assert.match(fb.decisions[0]!.fallbackReason ?? '', /^API error: .*500 always broken/);
  } finally {
    await ep.stop();
  }
});

test('a 400 is not retried', async () => {
  const ep = new FakeEndpoint(() => apiError(400, 'bad model name'));
  await ep.start();
  try {
    const { agent, waits } = agentFor(ep);
    await assert.rejects(agent.act(makeObservation(0)), /request failed \(not retryable\): 400 bad model name/);
    assert.equal(ep.requests.length, 1);
    assert.equal(waits.length, 0);
  } finally {
    await ep.stop();
  }
});

test('timeouts are retried, then fail with a timeout error', async () => {
  const ep = new FakeEndpoint(() => ({ hang: true }));
  await ep.start();
  try {
    const { agent } = agentFor(ep, { timeoutMs: 150, maxRetries: 1 });
    const t0 = performance.now();
    await assert.rejects(agent.act(makeObservation(0)), /after 2 attempt\(s\), last error timeout/);
    const took = performance.now() - t0;
    assert.equal(ep.requests.length, 2);
    assert.ok(took >= 280 && took < 5000, `took ${took.toFixed(0)} ms for two 150 ms timeouts`);
  } finally {
    await ep.stop();
  }
});

test('a network error (nothing listening) is retried and reported', async () => {
  const ep = new FakeEndpoint();
  await ep.start();
  const url = ep.url;
  await ep.stop();
  const agent = new ApiAgent({ baseUrl: url, model: 'm', env: {}, maxRetries: 1, sleep: async () => {} });
  await assert.rejects(agent.act(makeObservation(0)), /after 2 attempt\(s\), last error network error/);
  assert.equal(agent.stats.retries, 1);
});

test('garbage replies: re-asked once with the bad reply quoted, then the fallback, all counted', async () => {
  const ep = new FakeEndpoint(() => completion('I would rather not say.'));
  await ep.start();
  try {
    const { agent } = agentFor(ep, { fallback: 'sell' });
    const actions = [];
    for (let i = 0; i < 3; i++) actions.push(await agent.act(makeObservation(i)));
    assert.deepEqual(actions, ['sell', 'sell', 'sell']);
    assert.equal(ep.requests.length, 6, 'one first ask and one re-ask per day');
    const s = agent.stats;
    assert.equal(s.unparseable, 6);
    assert.equal(s.fallbacks, 3);
    assert.equal(s.calls, 6);
    const reask = ep.requests[1]!.body.messages as Array<{ role: string; content: string }>;
    assert.equal(reask.length, 4);
    assert.deepEqual(reask[2], { role: 'assistant', content: 'I would rather not say.' });
    assert.equal(reask[3]!.role, 'user');
    assert.match(reask[3]!.content, /could not be read/);
    const d = agent.decisions[0]!;
    assert.equal(d.fallback, true);
    assert.equal(d.fallbackReason, 'unreadable reply after 2 ask(s)');
    assert.equal(d.calls.length, 2);
    assert.equal(d.calls[0]!.parsed.ok, false);
  } finally {
    await ep.stop();
  }
});

test('an unreadable reply followed by a readable one: no fallback; parseRetries 0 goes straight to the fallback', async () => {
  const ep = new FakeEndpoint();
  await ep.start();
  try {
    ep.push(completion('buy or sell, hard to say'), completion('{"action": "sell"}'));
    const a = agentFor(ep).agent;
    assert.equal(await a.act(makeObservation(0)), 'sell');
    assert.equal(a.stats.unparseable, 1);
    assert.equal(a.stats.fallbacks, 0);

    ep.push(completion(''), completion(null));
    const b = agentFor(ep, { parseRetries: 0 }).agent;
    assert.equal(await b.act(makeObservation(0)), 'hold', 'default fallback is hold');
    assert.equal(await b.act(makeObservation(1)), 'hold');
    assert.equal(b.stats.unparseable, 2);
    assert.equal(b.stats.fallbacks, 2);
    assert.deepEqual(b.decisions[1]!.calls[0]!.parsed, { ok: false, reason: 'empty reply' });
    assert.equal(ep.requests.length, 4);
  } finally {
    await ep.stop();
  }
});

test('a malformed 200 response is a clear, non-retried error', async () => {
  const ep = new FakeEndpoint(() => ({ status: 200, body: { hello: 'world' } }));
  await ep.start();
  try {
    const { agent } = agentFor(ep);
    await assert.rejects(agent.act(makeObservation(0)), /malformed chat completion from .*expected choices\[0\]\.message, got \{"hello":"world"\}/);
    assert.equal(ep.requests.length, 1);
  } finally {
    await ep.stop();
  }
});

test('JSON mode: sent when asked; a 400 naming response_format drops it once, and the cache remembers', async () => {
  const rejecting = new FakeEndpoint((req) => req.body.response_format
    ? apiError(400, "Unrecognized request argument supplied: response_format")
    : completion('{"action": "buy"}'));
  await rejecting.start();
  const accepting = new FakeEndpoint(() => completion('{"action": "hold"}'));
  await accepting.start();
  const dir = tmp();
  try {
    const ok = agentFor(accepting, { jsonMode: true }).agent;
    assert.equal(await ok.act(makeObservation(0)), 'hold');
    assert.deepEqual(accepting.requests[0]!.body.response_format, { type: 'json_object' });

    const a = agentFor(rejecting, { jsonMode: true, cacheDir: dir }).agent;
    assert.equal(await a.act(makeObservation(0)), 'buy');
    assert.equal(await a.act(makeObservation(1)), 'buy');
    // Day 0: rejected + re-sent; day 1: sent without response_format straight away.
    assert.equal(rejecting.requests.length, 3);
    assert.deepEqual(rejecting.requests.map((r) => r.body.response_format === undefined), [false, true, true]);
    assert.equal(a.stats.jsonModeDropped, true);

    // A new agent with the same cache: knows the server rejects it and finds both replies cached.
    const b = agentFor(rejecting, { jsonMode: true, cacheDir: dir }).agent;
    assert.equal(await b.act(makeObservation(0)), 'buy');
    assert.equal(await b.act(makeObservation(1)), 'buy');
    assert.equal(rejecting.requests.length, 3);
    assert.equal(b.stats.cacheHits, 2);
  } finally {
    await rejecting.stop();
    await accepting.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cache: a second run sends zero requests and gives identical actions; settings change the key', async () => {
  // Replies depend on the request order, so a re-run that re-queried would differ.
  const ep = new FakeEndpoint((_req, i) => completion(JSON.stringify({ action: ['buy', 'sell', 'hold'][i % 3] })));
  await ep.start();
  const dir = tmp();
  try {
    const obs = Array.from({ length: 7 }, (_, i) => makeObservation(i));
    const first = agentFor(ep, { cacheDir: dir }).agent;
    const a1 = [];
    for (const o of obs) a1.push(await first.act(o));
    assert.equal(ep.requests.length, 7);
    assert.deepEqual(a1, ['buy', 'sell', 'hold', 'buy', 'sell', 'hold', 'buy']);

    const second = agentFor(ep, { cacheDir: dir }).agent;
    const a2 = [];
    for (const o of obs) a2.push(await second.act(o));
    assert.equal(ep.requests.length, 7, 'the re-run made no request');
    assert.deepEqual(a2, a1);
    assert.equal(second.stats.cacheHits, 7);
    assert.equal(second.stats.requests, 0);
    assert.ok(second.decisions.every((d) => d.calls[0]!.cached));

    // A different temperature is a different request.
    const third = agentFor(ep, { cacheDir: dir, temperature: 0.5 }).agent;
    await third.act(obs[0]!);
    assert.equal(ep.requests.length, 8);
    // Trailing slash on the base URL: same endpoint, same key.
    const fourth = agentFor(ep, { cacheDir: dir, baseUrl: `${ep.url}/` }).agent;
    await fourth.act(obs[0]!);
    assert.equal(ep.requests.length, 8);
  } finally {
    await ep.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cache: a corrupt file is an error naming the file, not a silent miss', async () => {
  const ep = new FakeEndpoint(() => completion('{"action":"buy"}'));
  await ep.start();
  const dir = tmp();
  try {
    await agentFor(ep, { cacheDir: dir }).agent.act(makeObservation(0));
    const sub = readdirSync(join(dir, 'replies'))[0]!;
    const file = join(dir, 'replies', sub, readdirSync(join(dir, 'replies', sub))[0]!);
    writeFileSync(file, '{ not json');
    await assert.rejects(agentFor(ep, { cacheDir: dir }).agent.act(makeObservation(0)), (err: Error) => {
      assert.ok(err.message.includes(file), err.message);
      assert.match(err.message, /is not valid JSON/);
      return true;
    });
    // A local fault is never turned into the fallback action, even with onApiError 'fallback'.
    await assert.rejects(agentFor(ep, { cacheDir: dir, onApiError: 'fallback' }).agent.act(makeObservation(0)), /is not valid JSON/);
  } finally {
    await ep.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('actMany: input order kept, requests in flight never above the concurrency limit', async () => {
  const ep = new FakeEndpoint((req) => {
    const msgs = req.body.messages as Array<{ content: string }>;
    // Falling paths (trend < 0) are answered sell, rising ones buy: the answer depends on the request.
    const falling = /Headline for day [0-9]*[13579]\b/.test(msgs[1]!.content);
    return { ...completion(JSON.stringify({ action: falling ? 'sell' : 'buy' })), delayMs: 40 } as never;
  });
  await ep.start();
  try {
    const { agent } = agentFor(ep, { concurrency: 2 });
    const obs = Array.from({ length: 8 }, (_, i) => makeObservation(i));
    const t0 = performance.now();
    const actions = await agent.actMany(obs);
    const took = performance.now() - t0;
    assert.deepEqual(actions, obs.map((_, i) => (i % 2 === 1 ? 'sell' : 'buy')));
    assert.equal(ep.maxInFlight, 2);
    assert.ok(took >= 4 * 40 - 10, `8 requests of 40 ms, 2 at a time, took ${took.toFixed(0)} ms`);
  } finally {
    await ep.stop();
  }
});

test('writeLog: one JSON line per decision in order, with raw replies, then the stats', async () => {
  const ep = new FakeEndpoint();
  await ep.start();
  const dir = tmp();
  try {
    ep.push(completion('{"action":"buy"}'), completion('nonsense'), completion('nonsense'));
    const { agent } = agentFor(ep, { logPath: join(dir, 'log.jsonl') });
    await agent.act(makeObservation(0));
    await agent.act(makeObservation(1));
    agent.writeLog();
    const lines = readFileSync(join(dir, 'log.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 3);
    assert.equal(lines[0].type, 'decision');
    assert.equal(lines[0].action, 'buy');
    assert.equal(lines[0].calls[0].reply, '{"action":"buy"}');
    assert.equal(lines[1].fallback, true);
    assert.deepEqual(lines[1].calls.map((c: { reply: string }) => c.reply), ['nonsense', 'nonsense']);
    assert.equal(lines[2].type, 'stats');
    assert.equal(lines[2].unparseable, 2);
    assert.equal(lines[2].fallbacks, 1);
    assert.equal(lines[2].decisions, 2);
    assert.throws(() => new ApiAgent({ baseUrl: ep.url, model: 'm' }).writeLog(), /no path given/);
  } finally {
    await ep.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad options are rejected with the option name', () => {
  const base = { baseUrl: 'http://127.0.0.1:1/v1', model: 'm' };
  const cases: Array<[Partial<ApiAgentOptions>, RegExp]> = [
    [{ baseUrl: 'ftp://x' }, /option baseUrl: expected an http\(s\) URL/],
    [{ model: ' ' }, /option model: expected a non-empty model name/],
    [{ temperature: 3 }, /option temperature: expected a number in \[0, 2\], got 3/],
    [{ maxTokens: 0 }, /option maxTokens: expected an integer >= 1, got 0/],
    [{ timeoutMs: 1.5 }, /option timeoutMs: expected an integer >= 1/],
    [{ maxRetries: -1 }, /option maxRetries: expected an integer >= 0/],
    [{ concurrency: 0 }, /option concurrency: expected an integer >= 1/],
    [{ parseRetries: -2 }, /option parseRetries: expected an integer >= 0/],
    [{ fallback: 'short' as never }, /option fallback: expected buy \| sell \| hold, got "short"/],
    [{ onApiError: 'ignore' as never }, /option onApiError: expected 'throw' \| 'fallback'/],
    [{ apiKeyEnv: 'BAD-NAME' }, /option apiKeyEnv: expected an environment variable name/],
  ];
  for (const [bad, re] of cases) assert.throws(() => new ApiAgent({ ...base, ...bad }), re);
});
