// The OpenAI-compatible server, called with the official openai client and with raw fetch: models,
// chat completions, /v1/act, bearer tokens, sampling, and every validation error (status + message).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import OpenAI, { AuthenticationError, BadRequestError, NotFoundError } from 'openai';
import { PolicyServer } from '../src/serve/server.js';
import { agentScorer, checkProbabilities, greedyAction, sampleAction, type ActionScorer } from '../src/serve/scorer.js';
import { createScorer, registerScorer, scorerNames } from '../src/serve/scorers.js';
import { MomentumAgent } from '../src/agents/baselines.js';
import { parseAction } from '../src/prompt/parse.js';
import { Rng } from '../src/util/rng.js';
import type { Observation } from '../src/env/types.js';
import { makeObservation } from './api-fake-endpoint.js';

/** A scorer that reads a prompt: fixed probabilities, and it records what it was given. */
function promptScorer(probs = { buy: 0.2, sell: 0.5, hold: 0.3 }): ActionScorer & { seen: unknown[] } {
  const seen: unknown[] = [];
  return {
    id: 'test-policy',
    seen,
    scorePrompt(messages) { seen.push(messages); return probs; },
    scoreObservation(obs) { seen.push(obs); return probs; },
  };
}

let policy: PolicyServer; // prompt scorer, no auth
let baseline: PolicyServer; // momentum baseline, bearer token
let scorer: ReturnType<typeof promptScorer>;
const KEY = 'sk-serve-test';

before(async () => {
  scorer = promptScorer();
  policy = new PolicyServer({ scorer, maxBodyBytes: 4096, maxPromptChars: 1000 });
  await policy.listen();
  baseline = new PolicyServer({ scorer: agentScorer(new MomentumAgent(20), 'baseline-momentum'), apiKey: KEY });
  await baseline.listen();
});

after(async () => {
  await policy.close();
  await baseline.close();
});

async function post(url: string, body: string | Uint8Array, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', body, headers: { 'Content-Type': 'application/json', ...headers } });
  return { status: res.status, headers: res.headers, json: (await res.json()) as { error?: { message: string; type: string; param: string | null; code: string | null } } & Record<string, unknown> };
}

test('listens on 127.0.0.1 by default; /health answers', async () => {
  assert.match(policy.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const res = await fetch(`${policy.url}/health`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { status: string; model: string };
  assert.equal(body.status, 'ok');
  assert.equal(body.model, 'test-policy');
});

test('openai client: models.list and models.retrieve give the scorer id', async () => {
  const client = new OpenAI({ baseURL: `${policy.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['test-policy']);
  assert.equal((await client.models.retrieve('test-policy')).id, 'test-policy');
  await assert.rejects(client.models.retrieve('gpt-4'), (e: unknown) => e instanceof NotFoundError && /"gpt-4" does not exist/.test(e.message));
});

test('openai client: chat.completions.create answers a parseable JSON action (greedy = argmax) and the probabilities', async () => {
  const client = new OpenAI({ baseURL: `${policy.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const messages = [{ role: 'system' as const, content: 'You trade.' }, { role: 'user' as const, content: [{ type: 'text' as const, text: 'Day 1. ' }, { type: 'text' as const, text: 'Act.' }] }];
  const res = await client.chat.completions.create({ model: 'test-policy', messages, temperature: 0 });
  const content = res.choices[0]!.message.content!;
  assert.equal(content, '{"action":"sell"}');
  assert.deepEqual(parseAction(content), { ok: true, action: 'sell', how: 'json' });
  assert.equal(res.choices[0]!.finish_reason, 'stop');
  assert.equal(res.object, 'chat.completion');
  assert.deepEqual((res as unknown as { action_probabilities: unknown }).action_probabilities, { buy: 0.2, sell: 0.5, hold: 0.3 });
  // Text parts are joined into one string for the scorer.
  assert.deepEqual(scorer.seen.at(-1), [{ role: 'system', content: 'You trade.' }, { role: 'user', content: 'Day 1. Act.' }]);
});

test('sampling: temperature > 0 draws from the tempered probabilities with the request seed', async () => {
  const url = `${policy.url}/v1/chat/completions`;
  const ask = async (temperature: number, seed: number) => {
    const r = await post(url, JSON.stringify({ model: 'test-policy', messages: [{ role: 'user', content: 'x' }], temperature, seed }));
    assert.equal(r.status, 200);
    return JSON.parse((r.json.choices as Array<{ message: { content: string } }>)[0]!.message.content).action as string;
  };
  // Independent reference: inverse CDF over p^(1/T) normalised, with the first uniform of Rng(seed).
  const reference = (T: number, seed: number): string => {
    const p = [0.2, 0.5, 0.3].map((x) => x ** (1 / T));
    const total = p[0]! + p[1]! + p[2]!;
    const u = new Rng(seed).uniform() * total;
    return u < p[0]! ? 'buy' : u < p[0]! + p[1]! ? 'sell' : 'hold';
  };
  const counts: Record<string, number> = { buy: 0, sell: 0, hold: 0 };
  for (let seed = 0; seed < 60; seed++) {
    const a = await ask(1, seed);
    assert.equal(a, reference(1, seed), `seed ${seed}`);
    assert.equal(await ask(1, seed), a, 'same seed, same draw');
    counts[a]!++;
    assert.equal(await ask(0.5, seed), reference(0.5, seed), `T=0.5 seed ${seed}`);
  }
  assert.ok(counts.buy! > 0 && counts.sell! > 0 && counts.hold! > 0, JSON.stringify(counts));
  assert.equal(await ask(0, 1), 'sell', 'temperature 0 is greedy');
});

test('sampleAction / greedyAction / checkProbabilities by hand', () => {
  const rng = new Rng(5);
  // Very low temperature: always the argmax, no NaN from underflow; a zero probability is never drawn.
  for (let i = 0; i < 50; i++) assert.equal(sampleAction({ buy: 0.3, sell: 0.36, hold: 0.34 }, 1e-4, rng), 'sell');
  for (let i = 0; i < 200; i++) assert.notEqual(sampleAction({ buy: 0.5, sell: 0, hold: 0.5 }, 2, rng), 'sell');
  assert.throws(() => sampleAction({ buy: 1, sell: 0, hold: 0 }, 0, rng), /temperature > 0/);
  assert.equal(greedyAction({ buy: 0.4, sell: 0.4, hold: 0.2 }), 'buy', 'ties go to the first in buy, sell, hold');
  assert.equal(greedyAction({ buy: 0.2, sell: 0.4, hold: 0.4 }), 'sell');
  assert.equal(greedyAction({ buy: 0.1, sell: 0.2, hold: 0.7 }), 'hold');
  assert.deepEqual(checkProbabilities({ buy: 0.25, sell: 0.25, hold: 0.5 }), { buy: 0.25, sell: 0.25, hold: 0.5 });
  assert.throws(() => checkProbabilities([0.2, 0.3, 0.5]), /expected an object \{buy, sell, hold\}/);
  assert.throws(() => checkProbabilities({ buy: 0.5, sell: 0.5, hold: 0, long: 0 }), /unexpected key\(s\) long/);
  assert.throws(() => checkProbabilities({ buy: 0.5, sell: 0.5 }), /probability of hold must be a finite number in \[0, 1\], got undefined/);
  assert.throws(() => checkProbabilities({ buy: Number.NaN, sell: 0.5, hold: 0.5 }), /probability of buy .* got NaN/);
  assert.throws(() => checkProbabilities({ buy: 0.5, sell: 0.5, hold: 0.5 }), /sum to 1.5, expected 1/);
});

test('the baseline scorer: /v1/act and chat with the observation extension give the momentum rule\'s action', async () => {
  const client = new OpenAI({ baseURL: `${baseline.url}/v1`, apiKey: KEY, maxRetries: 0 });
  const rising = makeObservation(0, { trend: 1 });
  const falling = makeObservation(0, { trend: -1 });
  const m = new MomentumAgent(20);
  assert.equal(m.act(rising), 'buy');
  assert.equal(m.act(falling), 'sell');
  for (const obs of [rising, falling]) {
    const r = await post(`${baseline.url}/v1/act`, JSON.stringify({ observation: obs }), { Authorization: `Bearer ${KEY}` });
    assert.equal(r.status, 200);
    const want = m.act(obs);
    assert.equal(r.json.action, want);
    assert.deepEqual(r.json.probabilities, { buy: 0, sell: 0, hold: 0, [want]: 1 });
    const chat = await client.chat.completions.create({ model: 'baseline-momentum', messages: [{ role: 'user', content: 'prompt' }], observation: obs } as never) as OpenAI.Chat.ChatCompletion;
    assert.equal(parseAction(chat.choices[0]!.message.content!).ok && JSON.parse(chat.choices[0]!.message.content!).action, want);
  }
  // Without the observation a rule baseline cannot answer a prompt: a clear 400.
  await assert.rejects(client.chat.completions.create({ model: 'baseline-momentum', messages: [{ role: 'user', content: 'prompt' }] }),
    (e: unknown) => e instanceof BadRequestError && /rule baseline that cannot read a prompt: send the day's observation in an "observation" field/.test(e.message)
      && e.param === 'observation');
});

test('bearer token: missing or wrong -> 401 in the OpenAI shape; right -> 200; /health needs none', async () => {
  const wrong = new OpenAI({ baseURL: `${baseline.url}/v1`, apiKey: 'sk-wrong', maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e: unknown) => e instanceof AuthenticationError && e.status === 401 && /Incorrect API key provided/.test(e.message) && e.code === 'invalid_api_key');
  const none = await fetch(`${baseline.url}/v1/models`);
  assert.equal(none.status, 401);
  assert.equal(none.headers.get('www-authenticate'), 'Bearer');
  assert.deepEqual(await none.json(), { error: { message: 'Missing bearer token: send the header "Authorization: Bearer <key>".', type: 'authentication_error', param: null, code: 'invalid_api_key' } });
  const prefix = await fetch(`${baseline.url}/v1/models`, { headers: { Authorization: `Bearer ${KEY.slice(0, -1)}` } });
  assert.equal(prefix.status, 401, 'a prefix of the key is not the key');
  const act = await post(`${baseline.url}/v1/act`, JSON.stringify({ observation: makeObservation(0) }));
  assert.equal(act.status, 401, '/v1/act is protected too');
  const ok = await fetch(`${baseline.url}/v1/models`, { headers: { Authorization: `Bearer ${KEY}` } });
  assert.equal(ok.status, 200);
  assert.equal((await fetch(`${baseline.url}/health`)).status, 200);
});

test('validation errors of /v1/chat/completions: status, param, code and message', async () => {
  const url = `${policy.url}/v1/chat/completions`;
  const msg = [{ role: 'user', content: 'hi' }];
  const cases: Array<[string | Uint8Array, number, string | null, string | null, RegExp]> = [
    ['{"model": "test-policy", "messages": [', 400, null, 'invalid_json', /^Request body is not valid JSON \(.+\); expected a JSON object$/],
    ['', 400, null, 'invalid_json', /^Request body is empty; expected a JSON object$/],
    [new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), 400, null, 'invalid_json', /^Request body is not valid UTF-8/],
    ['[1, 2]', 400, null, 'invalid_value', /^Invalid chat completion request: body: .*expected object/],
    [JSON.stringify({ messages: msg }), 400, 'model', 'invalid_value', /field 'model': .*expected string/],
    [JSON.stringify({ model: 'test-policy', messages: [] }), 400, 'messages', 'invalid_value', /field 'messages': expected at least one message/],
    [JSON.stringify({ model: 'test-policy', messages: 'hi' }), 400, 'messages', 'invalid_value', /field 'messages': .*expected array/],
    [JSON.stringify({ model: 'test-policy', messages: [{ role: 'robot', content: 'x' }] }), 400, 'messages.0.role', 'invalid_value', /field 'messages\.0\.role': .*"system"/],
    [JSON.stringify({ model: 'test-policy', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }), 400, 'messages.0.content', 'invalid_value', /expected a string or an array of text parts .*images and audio are not supported/],
    [JSON.stringify({ model: 'test-policy', messages: [{ role: 'user', content: 5 }] }), 400, 'messages.0.content', 'invalid_value', /expected a string or an array of text parts/],
    [JSON.stringify({ model: 'test-policy', messages: msg, temperature: 5 }), 400, 'temperature', 'invalid_value', /field 'temperature': .*<=2/],
    [JSON.stringify({ model: 'test-policy', messages: msg, temperature: 'hot' }), 400, 'temperature', 'invalid_value', /field 'temperature': .*expected number/],
    [JSON.stringify({ model: 'test-policy', messages: msg, seed: 1.5 }), 400, 'seed', 'invalid_value', /field 'seed': .*expected int/],
    [JSON.stringify({ model: 'test-policy', messages: msg, max_tokens: 0 }), 400, 'max_tokens', 'invalid_value', /field 'max_tokens'/],
    [JSON.stringify({ model: 'test-policy', messages: msg, response_format: { type: 'xml' } }), 400, 'response_format.type', 'invalid_value', /field 'response_format\.type'/],
    [JSON.stringify({ model: 'test-policy', messages: msg, stream: true }), 400, 'stream', 'unsupported_value', /^stream: true is not supported by this server; send stream: false or leave it out$/],
    [JSON.stringify({ model: 'test-policy', messages: msg, n: 3 }), 400, 'n', 'unsupported_value', /^n=3 is not supported; this server returns one choice \(n=1\)$/],
    [JSON.stringify({ model: 'gpt-4o', messages: msg }), 404, 'model', 'model_not_found', /^The model "gpt-4o" does not exist; this server serves "test-policy"/],
    [JSON.stringify({ model: 'test-policy', messages: [{ role: 'user', content: 'x'.repeat(600) }, { role: 'user', content: 'y'.repeat(401) }] }), 400, 'messages', 'context_length_exceeded', /^The prompt has 1001 characters, more than this server's limit of 1000$/],
    [JSON.stringify({ model: 'test-policy', messages: msg, pad: 'z'.repeat(5000) }), 413, null, 'request_too_large', /^Request body is larger than this server's limit of 4096 bytes$/],
  ];
  for (const [body, status, param, code, re] of cases) {
    const r = await post(url, body);
    const what = `body ${String(body).slice(0, 60)}`;
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.json)}`);
    assert.ok(r.json.error, what);
    assert.equal(r.json.error.param, param, what);
    assert.equal(r.json.error.code, code, what);
    assert.equal(r.json.error.type, status === 404 ? 'not_found_error' : 'invalid_request_error', what);
    assert.match(r.json.error.message, re, what);
  }
  // A prompt exactly at the limit is accepted; unknown extra fields are tolerated (clients send many).
  const atLimit = await post(url, JSON.stringify({ model: 'test-policy', messages: [{ role: 'user', content: 'x'.repeat(1000) }], user: 'u', logprobs: false }));
  assert.equal(atLimit.status, 200);
});

test('an oversized body without Content-Length (chunked) is cut off with 413', async () => {
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(`${policy.url}/v1/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => { text += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    for (let i = 0; i < 10; i++) req.write('x'.repeat(1000));
    req.end();
  });
  assert.equal(status, 413);
  assert.match(JSON.parse(body).error.message, /larger than this server's limit of 4096 bytes/);
});

test('validation errors of /v1/act name the field', async () => {
  const url = `${policy.url}/v1/act`;
  const good = makeObservation(0);
  const withObs = (patch: Partial<Observation> | Record<string, unknown>) => JSON.stringify({ observation: { ...good, ...patch } });
  const cases: Array<[string, string | null, RegExp]> = [
    ['{}', 'observation', /field 'observation': .*expected object/],
    [JSON.stringify({ observation: good, obs: 1 }), null, /body: Unrecognized key: "obs"/],
    [withObs({ date: '03/01/2021' }), 'observation.date', /expected a YYYY-MM-DD date/],
    [withObs({ prices: good.prices.slice(1) }), 'observation.prices', /expected as many prices as dates \(25\), got 24/],
    [withObs({ prices: [...good.prices.slice(0, -1), -5] }), 'observation.prices.24', /expected a positive price/],
    [withObs({ dates: [...good.dates.slice(0, -2), good.dates.at(-1)!, good.dates.at(-2)!] }), 'observation.dates.24', /dates must be strictly increasing/],
    [withObs({ date: '2030-01-01' }), 'observation.dates', /the last date must be the observation's date 2030-01-01/],
    [withObs({ t: -1 }), 'observation.t', /field 'observation\.t'/],
    [withObs({ text: [{ kind: 'tweet', text: 'x' }] }), 'observation.text.0.kind', /field 'observation\.text\.0\.kind'/],
    [withObs({ account: { position: 0 } }), 'observation.account.cash', /field 'observation\.account\.cash'/],
    [JSON.stringify({ observation: good, temperature: -1 }), 'temperature', /field 'temperature'/],
  ];
  for (const [body, param, re] of cases) {
    const r = await post(url, body);
    assert.equal(r.status, 400, body.slice(0, 80));
    assert.equal(r.json.error?.param, param, body.slice(0, 80));
    assert.match(r.json.error!.message, /^Invalid \/v1\/act request: /);
    assert.match(r.json.error!.message, re);
  }
  const ok = await post(url, JSON.stringify({ observation: good }));
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.json, { model: 'test-policy', action: 'sell', probabilities: { buy: 0.2, sell: 0.5, hold: 0.3 } });
});

test('unknown paths are 404 and wrong methods 405 with Allow', async () => {
  const r404 = await fetch(`${policy.url}/v1/completions`, { method: 'POST', body: '{}' });
  assert.equal(r404.status, 404);
  assert.match(((await r404.json()) as { error: { message: string } }).error.message, /^Unknown path "\/v1\/completions"; this server has GET \/health/);
  const r405 = await fetch(`${policy.url}/v1/chat/completions`);
  assert.equal(r405.status, 405);
  assert.equal(r405.headers.get('allow'), 'POST');
  assert.match(((await r405.json()) as { error: { message: string } }).error.message, /^Method GET is not allowed on \/v1\/chat\/completions; use POST$/);
  const r405b = await fetch(`${policy.url}/v1/models`, { method: 'DELETE' });
  assert.equal(r405b.status, 405);
});

test('a failing or misbehaving scorer is a 500 naming the scorer; the server keeps serving', async () => {
  const bad: ActionScorer[] = [
    { id: 'thrower', scorePrompt: () => { throw new Error('weights missing'); }, scoreObservation: () => { throw new Error('weights missing'); } },
    { id: 'liar', scorePrompt: () => ({ buy: 0.9, sell: 0.9, hold: 0 }), scoreObservation: () => ({ buy: 0.9, sell: 0.9, hold: 0 }) },
  ];
  const patterns = [/^scorer "thrower" failed: weights missing$/, /^scorer "liar" returned invalid probabilities: probabilities sum to 1.8, expected 1$/];
  for (let i = 0; i < bad.length; i++) {
    const s = new PolicyServer({ scorer: bad[i]! });
    await s.listen();
    try {
      for (const [path, body] of [['/v1/chat/completions', { model: bad[i]!.id, messages: [{ role: 'user', content: 'x' }] }], ['/v1/act', { observation: makeObservation(0) }]] as const) {
        const r = await post(`${s.url}${path}`, JSON.stringify(body));
        assert.equal(r.status, 500);
        assert.equal(r.json.error!.type, 'server_error');
        assert.match(r.json.error!.message, patterns[i]!);
      }
      assert.equal((await fetch(`${s.url}/health`)).status, 200);
      assert.equal(s.stats.serverErrors, 2);
    } finally {
      await s.close();
    }
  }
});

test('scorer registry: the agent scorer, unknown names and missing options are clear errors; new scorers plug in', async () => {
  const s = await createScorer('agent', { agent: 'momentum' });
  assert.equal(s.id, 'baseline-momentum');
  assert.deepEqual(await s.scoreObservation(makeObservation(0, { trend: -1 })), { buy: 0, sell: 1, hold: 0 });
  assert.equal((await createScorer('agent', { agent: 'buy-and-hold', id: 'bh' })).id, 'bh');
  await assert.rejects(createScorer('agent', {}), /scorer "agent" needs options\.agent/);
  await assert.rejects(createScorer('agent', { agent: 'oracle' }), /unknown agent "oracle"; known agents: /);
  await assert.rejects(createScorer('llm'), /unknown scorer "llm"; known scorers: agent/);
  registerScorer('constant-test', 'always hold', () => ({ id: 'const', scoreObservation: () => ({ buy: 0, sell: 0, hold: 1 }) }));
  assert.ok(scorerNames().includes('constant-test'));
  assert.equal((await createScorer('constant-test')).id, 'const');
  assert.throws(() => registerScorer('Bad Name', 'x', () => s), /must be lower-case letters, digits and dashes/);
});

test('bad server options are rejected', () => {
  const s = promptScorer();
  assert.throws(() => new PolicyServer({ scorer: s, port: 70000 }), /port must be an integer in \[0, 65535\], got 70000/);
  assert.throws(() => new PolicyServer({ scorer: s, maxBodyBytes: 0 }), /maxBodyBytes must be a positive integer/);
  assert.throws(() => new PolicyServer({ scorer: s, maxPromptChars: 1.5 }), /maxPromptChars must be a positive integer/);
});
