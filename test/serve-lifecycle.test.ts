// The server under load and garbage, its clean shutdown, and `flag-trader serve` as a process
// (URL printed, bearer token from --api-key-env, exit 0 on SIGTERM / SIGINT, bad flags exit 1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { connect } from 'node:net';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { PolicyServer } from '../src/serve/server.js';
import type { ActionScorer } from '../src/serve/scorer.js';
import { parseAction } from '../src/prompt/parse.js';
import { Rng } from '../src/util/rng.js';
import { makeObservation } from './api-fake-endpoint.js';
import { repoRoot } from './shared-paths.js';

const ROOT = repoRoot();

const probs = { buy: 0.6, sell: 0.3, hold: 0.1 };
const fixedScorer: ActionScorer = { id: 'p', scorePrompt: () => probs, scoreObservation: () => probs };

/** Run `tasks` with at most `limit` at once. */
async function pool<T>(tasks: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const out = new Array<T>(tasks.length);
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < tasks.length) { const i = next++; out[i] = await tasks[i]!(); }
  }));
  return out;
}

/** Garbage on a raw TCP connection (not HTTP at all): the server must answer 400 or close, and live on. */
function rawGarbage(url: string, bytes: Uint8Array): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const sock = connect(Number(port), hostname, () => sock.end(bytes));
    let text = '';
    sock.on('data', (c) => { text += c.toString('latin1'); });
    sock.on('close', () => resolve(text));
    sock.on('error', () => resolve(text));
  });
}

test('load: 300 requests at concurrency 20, a third malformed; every valid one answered, no 5xx, still healthy', async () => {
  const server = new PolicyServer({ scorer: fixedScorer, maxBodyBytes: 16 * 1024 });
  const url = await server.listen();
  try {
    const rng = new Rng(2024);
    const obs = makeObservation(3);
    const valid = [
      () => ({ path: '/v1/chat/completions', body: JSON.stringify({ model: 'p', messages: [{ role: 'user', content: 'day' }] }) }),
      () => ({ path: '/v1/act', body: JSON.stringify({ observation: obs }) }),
    ];
    const malformed = [
      () => ({ path: '/v1/chat/completions', body: '{"model": "p", "messages": [' }),
      () => ({ path: '/v1/chat/completions', body: Buffer.from(Array.from({ length: 200 }, () => rng.int(256))) }),
      () => ({ path: '/v1/chat/completions', body: JSON.stringify({ model: 'p', messages: [{ role: 'user', content: 'x'.repeat(20000) }] }) }),
      () => ({ path: '/v1/chat/completions', body: JSON.stringify({ model: 5, messages: null, temperature: 'hot' }) }),
      () => ({ path: '/v1/act', body: JSON.stringify({ observation: { ...obs, prices: [1, 2] } }) }),
      () => ({ path: '/v1/act', body: '['.repeat(5000) + ']'.repeat(5000) }),
      () => ({ path: '/v1/nothing', body: '{}' }),
      () => ({ path: '/v1/chat/completions', body: JSON.stringify({ model: 'p', messages: [{ role: 'user', content: 'x' }], stream: true }) }),
    ];
    const kinds: Array<'valid' | 'bad'> = [];
    const tasks = Array.from({ length: 300 }, (_, i) => {
      const bad = i % 3 === 2;
      kinds.push(bad ? 'bad' : 'valid');
      const make = bad ? malformed[rng.int(malformed.length)]! : valid[rng.int(valid.length)]!;
      return async () => {
        const { path, body } = make();
        try {
          const res = await fetch(`${url}${path}`, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
          return { path, status: res.status, json: (await res.json()) as Record<string, unknown> };
        } catch (err) {
          return { path, status: -1, json: { transport: String(err) } };
        }
      };
    });
    const garbage = Array.from({ length: 5 }, () => rawGarbage(url, Buffer.from(Array.from({ length: 64 }, () => rng.int(256)))));
    const results = await pool(tasks, 20);
    await Promise.all(garbage);

    let validOk = 0, badRejected = 0;
    results.forEach((r, i) => {
      if (kinds[i] === 'valid') {
        assert.equal(r.status, 200, JSON.stringify(r));
        const action = r.path === '/v1/act' ? r.json.action
          : (() => { const p = parseAction((r.json.choices as Array<{ message: { content: string } }>)[0]!.message.content); return p.ok ? p.action : null; })();
        assert.equal(action, 'buy');
        validOk++;
      } else {
        assert.ok(r.status >= 400 && r.status < 500, `malformed request answered ${r.status}: ${JSON.stringify(r.json).slice(0, 200)}`);
        assert.equal(typeof (r.json.error as { message?: unknown }).message, 'string');
        badRejected++;
      }
    });
    assert.equal(validOk, 200);
    assert.equal(badRejected, 100);
    assert.equal(server.stats.serverErrors, 0);
    assert.equal(server.stats.inFlight, 0);
    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { status: string }).status, 'ok');
  } finally {
    await server.close();
  }
});

test('clean shutdown: stops accepting, finishes the request in flight, closes idle keep-alive connections', async () => {
  let release!: () => void;
  let scoredAt = Infinity;
  const started = new Promise<void>((resolve) => { release = resolve; });
  const slow: ActionScorer = {
    id: 'slow',
    scoreObservation: () => probs,
    scorePrompt: async () => { release(); await new Promise((r) => setTimeout(r, 300)); scoredAt = performance.now(); return probs; },
  };
  const server = new PolicyServer({ scorer: slow });
  const url = await server.listen();
  // An idle keep-alive connection: must not hold the shutdown open.
  const keepAlive = new HttpAgent({ keepAlive: true });
  await new Promise<void>((resolve, reject) => {
    httpRequest(`${url}/health`, { agent: keepAlive }, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject).end();
  });

  const inFlight = fetch(`${url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'slow', messages: [{ role: 'user', content: 'x' }] }) });
  await started;
  const t0 = performance.now();
  let closedAt = 0, inFlightAtClose = -1;
  const closing = server.close().then(() => { closedAt = performance.now(); inFlightAtClose = server.stats.inFlight; });
  // A new connection is refused right away.
  await assert.rejects(fetch(`${url}/health`), /fetch failed/);
  const res = await inFlight;
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('connection'), 'close');
  assert.equal(JSON.parse(((await res.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content).action, 'buy');
  await closing;
  // Server-side times: the client may see its response after close() has already resolved, which
  // is fine; what matters is that close() waited for the scorer and the answer to the request in flight.
  assert.ok(closedAt >= scoredAt, 'close() resolved only after the request in flight was answered');
  assert.equal(inFlightAtClose, 0, 'no request was still in flight when close() resolved');
  assert.ok(closedAt - t0 < 2000, `shutdown took ${(closedAt - t0).toFixed(0)} ms`);
  assert.equal(server.stats.inFlight, 0);
  keepAlive.destroy();
});

interface Proc { code: number | null; signal: string | null; stdout: string; stderr: string }

/** Start `flag-trader serve`, wait for the URL line, run `fn`, send `signal`, collect the exit. */
async function withServeProcess(args: string[], env: Record<string, string>, signal: NodeJS.Signals, fn: (base: string) => Promise<void>): Promise<Proc> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), 'serve', ...args], {
    cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '', stderr = '';
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const exited = new Promise<Proc>((resolve) => child.on('exit', (code, sig) => resolve({ code, signal: sig, stdout, stderr })));
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL within 30 s; stderr: ${stderr}`)), 30_000);
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      const m = /at (http:\/\/127\.0\.0\.1:\d+)\/v1 /.exec(stdout);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    });
    child.on('exit', () => { clearTimeout(timer); reject(new Error(`exited early: ${stderr}`)); });
  });
  try {
    await fn(base);
  } finally {
    child.kill(signal);
  }
  return exited;
}

test('flag-trader serve: prints the URL, enforces --api-key-env, exits 0 on SIGTERM and on SIGINT', async () => {
  const run = await withServeProcess(['--agent', 'momentum', '--port', '0', '--api-key-env', 'SERVE_TEST_KEY'], { SERVE_TEST_KEY: 'k-123' }, 'SIGTERM', async (base) => {
    assert.equal((await fetch(`${base}/v1/models`)).status, 401);
    const ok = await fetch(`${base}/v1/models`, { headers: { Authorization: 'Bearer k-123' } });
    assert.equal(ok.status, 200);
    assert.deepEqual(((await ok.json()) as { data: Array<{ id: string }> }).data.map((m) => m.id), ['baseline-momentum']);
    const act = await fetch(`${base}/v1/act`, { method: 'POST', headers: { Authorization: 'Bearer k-123' }, body: JSON.stringify({ observation: makeObservation(0, { trend: -1 }) }) });
    assert.equal(((await act.json()) as { action: string }).action, 'sell');
  });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /model baseline-momentum at http:\/\/127\.0\.0\.1:\d+\/v1/);
  assert.match(run.stdout, /SIGTERM, finishing requests in flight and shutting down\n.*stopped/s);

  const run2 = await withServeProcess(['--agent', 'buy-and-hold', '--model-id', 'bh'], {}, 'SIGINT', async (base) => {
    assert.equal((await fetch(`${base}/health`)).status, 200);
  });
  assert.equal(run2.code, 0, run2.stderr);
  assert.match(run2.stdout, /model bh at /);
  assert.match(run2.stdout, /SIGINT/);
});

test('flag-trader serve: bad flags exit 1 with a clear message', async () => {
  const cli = (args: string[], env: Record<string, string> = {}) => new Promise<{ code: number; stderr: string }>((resolve) => {
    const e = { ...process.env, ...env };
    delete e.SERVE_UNSET_KEY;
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), 'serve', ...args], { cwd: ROOT, env: e, timeout: 30_000 },
      (err, _stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr }));
  });
  const cases: Array<[string[], RegExp]> = [
    [['--agent', 'momentum', '--api-key-env', 'SERVE_UNSET_KEY'], /--api-key-env SERVE_UNSET_KEY: the environment variable SERVE_UNSET_KEY is not set or empty/],
    [['--agent', 'momentum', '--port', '99999'], /--port: expected an integer in \[0, 65535\], got "99999"/],
    [['--agent', 'oracle'], /unknown agent "oracle"; known agents: /],
    [[], /serve: choose exactly one policy: --run DIR \(a trained run\), --model M \(an LLM read zero-shot\) or --agent NAME/],
  ];
  const results = await Promise.all(cases.map(([args]) => cli(args)));
  results.forEach((r, i) => {
    assert.equal(r.code, 1, `${cases[i]![0].join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, cases[i]![1]);
  });
});
