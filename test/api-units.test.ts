// Pieces of the API agent on their own: Retry-After parsing, backoff bounds and determinism, the
// retryable set, the semaphore, cache keys and cache file checks, and createApiAgentFromOptions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import { Command } from 'commander';
import { backoffDelayMs, retryAfterMs, retryReason, DEFAULT_BACKOFF } from '../src/agents/api-retry.js';
import { Semaphore } from '../src/agents/api-limit.js';
import { ApiCache, cacheKey, canonicalJson, type CacheRequest } from '../src/agents/api-cache.js';
import { addApiAgentOptions, apiAgentOptionsFromFlags, createApiAgentFromOptions } from '../src/agents/api-options.js';
import { ApiAgent } from '../src/agents/api-agent.js';
import { Rng } from '../src/util/rng.js';

test('retryAfterMs reads retry-after-ms, delta-seconds and HTTP dates; junk is ignored', () => {
  const h = (o: Record<string, string>) => new Headers(o);
  assert.equal(retryAfterMs(h({ 'retry-after': '3' })), 3000);
  assert.equal(retryAfterMs(h({ 'retry-after': '0.5' })), 500);
  assert.equal(retryAfterMs(h({ 'retry-after-ms': '250', 'retry-after': '9' })), 250, 'the ms header wins');
  const now = Date.parse('2024-01-01T00:00:00Z');
  assert.equal(retryAfterMs(h({ 'retry-after': 'Mon, 01 Jan 2024 00:00:07 GMT' }), now), 7000);
  assert.equal(retryAfterMs(h({ 'retry-after': 'Sun, 31 Dec 2023 23:00:00 GMT' }), now), 0, 'a past date means now');
  assert.equal(retryAfterMs(h({ 'retry-after': 'soon' })), undefined);
  assert.equal(retryAfterMs(h({ 'retry-after': '-4' })), undefined);
  assert.equal(retryAfterMs(h({})), undefined);
  assert.equal(retryAfterMs(undefined), undefined);
});

test('backoff: equal jitter within [cap/2, cap), cap doubling up to maxMs, same seed same delays', () => {
  const o = { ...DEFAULT_BACKOFF, baseMs: 100, maxMs: 1000 };
  const caps = [100, 200, 400, 800, 1000, 1000];
  const rng = new Rng(3);
  const delays = caps.map((_, i) => backoffDelayMs(i, o, rng));
  delays.forEach((d, i) => assert.ok(d >= caps[i]! / 2 && d < caps[i]!, `retry ${i}: ${d} not in [${caps[i]! / 2}, ${caps[i]})`));
  const again = new Rng(3);
  assert.deepEqual(caps.map((_, i) => backoffDelayMs(i, o, again)), delays);
  const other = new Rng(4);
  assert.notDeepEqual(caps.map((_, i) => backoffDelayMs(i, o, other)), delays);
});

test('retryable: timeouts, network errors, 408/409/429/5xx; not other 4xx', () => {
  const err = (status: number) => new APIError(status, { message: 'x' }, 'x', new Headers());
  assert.equal(retryReason(new APIConnectionTimeoutError()), 'timeout');
  assert.equal(retryReason(new APIConnectionError({ message: 'refused' })), 'network error');
  for (const s of [408, 409, 429, 500, 502, 503]) assert.equal(retryReason(err(s)), `HTTP ${s}`);
  for (const s of [400, 401, 403, 404, 422]) assert.equal(retryReason(err(s)), null);
  assert.equal(retryReason(new Error('plain')), null);
});

test('Semaphore: never more than the limit at once, FIFO, releases on failure', async () => {
  const sem = new Semaphore(3);
  let running = 0, peak = 0;
  const order: number[] = [];
  const tasks = Array.from({ length: 10 }, (_, i) => sem.run(async () => {
    running++; peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, 5));
    running--; order.push(i);
    if (i === 4) throw new Error('task 4 fails');
    return i;
  }));
  const results = await Promise.allSettled(tasks);
  assert.equal(peak, 3);
  assert.equal(results.filter((r) => r.status === 'rejected').length, 1);
  assert.equal(sem.running, 0);
  // Starts are FIFO, so finishes (all 5 ms) come in start order.
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.throws(() => new Semaphore(0), /positive integer, got 0/);
});

test('cache key: sha256 of the canonical JSON; key order and trailing slashes do not matter, content does', () => {
  const req: CacheRequest = { baseUrl: 'http://h/v1', model: 'm', messages: [{ role: 'user', content: 'hi' }], settings: { temperature: 0, max_tokens: 5 } };
  // Independent computation: the canonical text written by hand (keys sorted at every level).
  const text = '{"baseUrl":"http://h/v1","messages":[{"content":"hi","role":"user"}],"model":"m","settings":{"max_tokens":5,"temperature":0}}';
  assert.equal(canonicalJson(req), text);
  assert.equal(cacheKey(req), createHash('sha256').update(text).digest('hex'));
  const reordered: CacheRequest = { settings: { max_tokens: 5, temperature: 0 }, messages: [{ content: 'hi', role: 'user' }], model: 'm', baseUrl: 'http://h/v1//' };
  assert.equal(cacheKey(reordered), cacheKey(req));
  assert.notEqual(cacheKey({ ...req, messages: [{ role: 'user', content: 'hi!' }] }), cacheKey(req));
  assert.notEqual(cacheKey({ ...req, model: 'm2' }), cacheKey(req));
  assert.notEqual(cacheKey({ ...req, settings: { temperature: 0, max_tokens: 6 } }), cacheKey(req));
});

test('cache files: round trip; wrong shape, wrong key and a different stored request are errors naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'api-cache-'));
  try {
    const cache = new ApiCache(dir);
    const req: CacheRequest = { baseUrl: 'http://h/v1', model: 'm', messages: [{ role: 'user', content: 'hi' }], settings: {} };
    assert.equal(cache.get(req), undefined);
    cache.put(req, { content: '{"action":"buy"}', finishReason: 'stop' });
    assert.deepEqual(cache.get(req), { content: '{"action":"buy"}', finishReason: 'stop' });
    const key = cacheKey(req);
    const path = cache.pathFor(key);
    assert.ok(path.endsWith(join('replies', key.slice(0, 2), `${key}.json`)));

    const good = { format: 1, key, request: req, reply: { content: 'x', finishReason: null }, savedAt: 't' };
    writeFileSync(path, JSON.stringify({ ...good, reply: { content: 5, finishReason: null } }));
    assert.throws(() => cache.get(req), (e: Error) => e.message.includes(path) && /field 'reply.content'/.test(e.message));
    writeFileSync(path, JSON.stringify({ ...good, key: 'a'.repeat(64) }));
    assert.throws(() => cache.get(req), /stored key a+ does not match its file name/);
    writeFileSync(path, JSON.stringify({ ...good, request: { ...req, model: 'other' } }));
    assert.throws(() => cache.get(req), /stored request differs/);

    cache.putMeta({ a: 1 }, { flag: true });
    assert.deepEqual(cache.getMeta({ a: 1 }), { flag: true });
    assert.equal(cache.getMeta({ a: 2 }), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('createApiAgentFromOptions: CLI strings are converted; every bad value names its flag', () => {
  const a = createApiAgentFromOptions({
    baseUrl: 'http://127.0.0.1:1/v1', apiModel: 'qwen', temperature: '0.7', maxTokens: '12', jsonMode: true,
    timeoutMs: '1000', maxRetries: '0', concurrency: '2', fallback: 'sell', parseRetries: '0', mode: 'account',
  });
  assert.ok(a instanceof ApiAgent);
  assert.equal(a.name, 'api:qwen');

  const base = { baseUrl: 'http://127.0.0.1:1/v1', apiModel: 'qwen' };
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ baseUrl: undefined }, /^Error: --base-url is required/],
    [{ apiModel: undefined }, /^Error: --api-model is required/],
    [{ baseUrl: 'localhost:8000' }, /^Error: --base-url: expected an http\(s\) URL .*got "localhost:8000"$/],
    [{ apiModel: '  ' }, /^Error: --api-model: expected a non-empty model name/],
    [{ temperature: 'abc' }, /^Error: --temperature: expected a number in \[0, 2\], got "abc"$/],
    [{ temperature: '2.5' }, /^Error: --temperature: expected a number in \[0, 2\], got "2.5"$/],
    [{ maxTokens: '0' }, /^Error: --max-tokens: expected an integer >= 1, got "0"$/],
    [{ maxTokens: '' }, /^Error: --max-tokens: expected an integer >= 1, got ""$/],
    [{ maxTokensField: 'tokens' }, /^Error: --max-tokens-field: expected max_tokens \| max_completion_tokens, got "tokens"$/],
    [{ jsonMode: 'yes' }, /^Error: --json-mode: expected true or false, got "yes"$/],
    [{ timeoutMs: '1.5' }, /^Error: --api-timeout-ms: expected an integer >= 1/],
    [{ maxRetries: '-1' }, /^Error: --api-max-retries: expected an integer >= 0/],
    [{ concurrency: '0' }, /^Error: --api-concurrency: expected an integer >= 1/],
    [{ fallback: 'short' }, /^Error: --api-fallback: expected buy \| sell \| hold, got "short"$/],
    [{ parseRetries: 'x' }, /^Error: --api-parse-retries: expected an integer >= 0/],
    [{ onApiError: 'skip' }, /^Error: --api-on-error: expected throw \| fallback/],
    [{ apiKeyEnv: 'MY-KEY' }, /^Error: --api-key-env: expected an environment variable name, got "MY-KEY"$/],
    [{ requestSeed: '9007199254740993' }, /^Error: --api-seed: expected an integer from -9007199254740991 to 9007199254740991, got "9007199254740993"$/],
    [{ seed: '1.5' }, /^Error: --seed: expected an integer from -9007199254740991 to 9007199254740991, got "1.5"$/],
    [{ mode: 'paper' }, /^Error: --mode: expected benchmark \| account, got "paper"$/],
  ];
  for (const [bad, re] of cases) assert.throws(() => createApiAgentFromOptions({ ...base, ...bad }), re);
});

test('addApiAgentOptions + apiAgentOptionsFromFlags: parsed flags build the agent', () => {
  const cmd = addApiAgentOptions(new Command().exitOverride().option('--seed <n>').option('--mode <m>'));
  cmd.parse(['--base-url', 'http://127.0.0.1:9/v1', '--api-model', 'llama', '--api-cache', '/tmp/x', '--json-mode',
    '--api-fallback', 'sell', '--api-timeout-ms', '500', '--seed', '4'], { from: 'user' });
  const mapped = apiAgentOptionsFromFlags(cmd.opts());
  assert.equal(mapped.baseUrl, 'http://127.0.0.1:9/v1');
  assert.equal(mapped.apiModel, 'llama');
  assert.equal(mapped.cacheDir, '/tmp/x');
  assert.equal(mapped.jsonMode, true);
  assert.equal(mapped.fallback, 'sell');
  assert.equal(mapped.timeoutMs, '500');
  assert.equal(mapped.seed, '4');
  assert.equal(createApiAgentFromOptions(mapped).name, 'api:llama');
  assert.throws(() => cmd.parse(['--api-fallback', 'long'], { from: 'user' }), /Allowed choices are buy, sell, hold/);
});
