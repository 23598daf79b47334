// Connection limits of `flag-trader serve` (issue 12): a client that sends its headers too slowly is
// answered 408 and disconnected within --headers-timeout-ms (node's default let a request take 300 s),
// an idle keep-alive connection is closed after --keep-alive-timeout-ms, connections beyond
// --max-connections are closed, and the flags reach the node server. Also: the bearer scheme name is
// case-insensitive (RFC 7235), so "bearer KEY" is accepted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { Command } from 'commander';
import { PolicyServer, SERVE_DEFAULTS } from '../src/serve/server.js';
import { agentScorer } from '../src/serve/scorer.js';
import { MomentumAgent } from '../src/agents/baselines.js';
import { registerServe, serveOptionsFromFlags, type ServeFlags } from '../src/cli/serve.js';
import { makeObservation } from './api-fake-endpoint.js';

const scorer = () => agentScorer(new MomentumAgent(20), 'baseline-momentum');

/** A raw TCP client: what it has received, and when the server closed it (ms after `open`). */
interface Client { socket: Socket; received: () => string; closedAfter: Promise<number> }

async function open(url: string): Promise<Client> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  const t0 = performance.now();
  let text = '';
  socket.on('data', (d: Buffer) => { text += d.toString('latin1'); });
  socket.on('error', () => { /* a reset by the server is a close too */ });
  const closedAfter = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - t0)));
  return { socket, received: () => text, closedAfter };
}

/** Resolves to the value, or to 'timeout' after ms. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout;
  return Promise.race([p.finally(() => clearTimeout(timer)), new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), ms); })]);
}

test('defaults: headers 20 s, request 60 s, keep-alive 5 s, 256 connections, read back from the node server', async () => {
  const server = new PolicyServer({ scorer: scorer() });
  try {
    assert.deepEqual(server.limits, { headersTimeoutMs: 20_000, requestTimeoutMs: 60_000, keepAliveTimeoutMs: 5_000, maxConnections: 256 });
    assert.equal(SERVE_DEFAULTS.headersTimeoutMs, 20_000);
  } finally {
    await server.close();
  }
});

test('a client that sends its headers too slowly gets 408 and is disconnected within headersTimeoutMs', async () => {
  const server = new PolicyServer({ scorer: scorer(), headersTimeoutMs: 300, requestTimeoutMs: 1000 });
  const url = await server.listen();
  try {
    // slowloris: a header line every 100 ms, never the blank line that ends the headers
    const slow = await open(url);
    slow.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => { if (!slow.socket.destroyed) slow.socket.write('X-Slow: 1\r\n'); }, 100);
    // and one that connects and sends nothing at all
    const silent = await open(url);
    try {
      for (const [name, c] of [['slow', slow], ['silent', silent]] as const) {
        const ms = await within(c.closedAfter, 5000);
        assert.notEqual(ms, 'timeout', `${name} client still connected after 5 s`);
        assert.ok((ms as number) >= 250, `${name} closed after ${ms} ms, before the 300 ms limit`);
        assert.ok((ms as number) < 1500, `${name} closed after ${ms} ms: more than the limit plus node's check interval`);
      }
      assert.match(slow.received(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
    } finally {
      clearInterval(drip);
    }
    // the server still answers
    assert.equal((await fetch(`${url}/health`)).status, 200);
  } finally {
    await server.close();
  }
});

test('a client that sends its body too slowly gets 408 and is disconnected within requestTimeoutMs', async () => {
  const server = new PolicyServer({ scorer: scorer(), headersTimeoutMs: 200, requestTimeoutMs: 600 });
  const url = await server.listen();
  try {
    const c = await open(url);
    c.socket.write('POST /v1/act HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{');
    const ms = await within(c.closedAfter, 5000);
    assert.notEqual(ms, 'timeout', 'the slow body kept the connection open');
    assert.ok((ms as number) >= 550 && (ms as number) < 2000, `closed after ${ms} ms`);
    assert.match(c.received(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
  } finally {
    await server.close();
  }
});

test('the request timeout covers receiving the request, not scoring it: a slow scorer still answers', async () => {
  const slowScorer = { id: 'slow', scoreObservation: async () => { await new Promise((r) => setTimeout(r, 900)); return { buy: 1, sell: 0, hold: 0 }; } };
  const server = new PolicyServer({ scorer: slowScorer, headersTimeoutMs: 100, requestTimeoutMs: 300 });
  const url = await server.listen();
  try {
    const res = await fetch(`${url}/v1/act`, { method: 'POST', body: JSON.stringify({ observation: makeObservation(0) }) });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { action: string }).action, 'buy');
  } finally {
    await server.close();
  }
});

test('an idle keep-alive connection is closed after keepAliveTimeoutMs', async () => {
  const server = new PolicyServer({ scorer: scorer(), keepAliveTimeoutMs: 200 });
  const url = await server.listen();
  try {
    const c = await open(url);
    c.socket.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    const ms = await within(c.closedAfter, 5000);
    assert.notEqual(ms, 'timeout', 'the idle connection was not closed');
    assert.ok((ms as number) < 2000, `closed after ${ms} ms`);
    assert.match(c.received(), /^HTTP\/1\.1 200 OK\r\n/);
  } finally {
    await server.close();
  }
});

test('connections beyond maxConnections are closed at once; the first one is still served', async () => {
  const server = new PolicyServer({ scorer: scorer(), maxConnections: 1 });
  const url = await server.listen();
  try {
    const first = await open(url);
    const second = await open(url);
    const ms = await within(second.closedAfter, 3000);
    assert.notEqual(ms, 'timeout', 'the connection over the cap was not closed');
    assert.equal(second.received(), '');
    first.socket.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await within(first.closedAfter, 3000);
    assert.match(first.received(), /^HTTP\/1\.1 200 OK\r\n/);
  } finally {
    await server.close();
  }
});

test('bad limits are refused with the option and its flag', () => {
  assert.throws(() => new PolicyServer({ scorer: scorer(), headersTimeoutMs: 0 }), /serve option headersTimeoutMs \(--headers-timeout-ms\) must be a positive integer, got 0/);
  assert.throws(() => new PolicyServer({ scorer: scorer(), maxConnections: 1.5 }), /maxConnections \(--max-connections\) must be a positive integer, got 1\.5/);
  assert.throws(() => new PolicyServer({ scorer: scorer(), headersTimeoutMs: 5000, requestTimeoutMs: 1000 }),
    /headersTimeoutMs \(--headers-timeout-ms\) 5000 must be at most requestTimeoutMs \(--request-timeout-ms\) 1000/);
});

/** Parse `serve ...` in-process with the real options, capturing the flags instead of serving. */
async function serveFlags(...args: string[]): Promise<ServeFlags | string> {
  const program = new Command().exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  registerServe(program);
  let flags: ServeFlags | undefined;
  program.commands.find((c) => c.name() === 'serve')!.action((f: ServeFlags) => { flags = f; });
  try { await program.parseAsync(['node', 'flag-trader', 'serve', ...args]); } catch (e) { return (e as Error).message; }
  return flags!;
}

test('serve flags --headers-timeout-ms, --request-timeout-ms, --keep-alive-timeout-ms, --max-connections reach the node server', async () => {
  const flags = await serveFlags('--agent', 'momentum', '--headers-timeout-ms', '1234', '--request-timeout-ms', '5678', '--keep-alive-timeout-ms', '910', '--max-connections', '7');
  assert.equal(typeof flags, 'object', String(flags));
  const server = new PolicyServer(serveOptionsFromFlags(flags as ServeFlags, scorer(), null));
  try {
    assert.deepEqual(server.limits, { headersTimeoutMs: 1234, requestTimeoutMs: 5678, keepAliveTimeoutMs: 910, maxConnections: 7 });
  } finally {
    await server.close();
  }
  const defaults = await serveFlags('--agent', 'momentum');
  const d = new PolicyServer(serveOptionsFromFlags(defaults as ServeFlags, scorer(), null));
  assert.deepEqual(d.limits, { headersTimeoutMs: 20_000, requestTimeoutMs: 60_000, keepAliveTimeoutMs: 5_000, maxConnections: 256 });
  await d.close();
  for (const flag of ['--headers-timeout-ms', '--request-timeout-ms', '--keep-alive-timeout-ms', '--max-connections']) {
    assert.match(String(await serveFlags('--agent', 'momentum', flag, '0')), new RegExp(`${flag}: expected an integer in \\[1, \\d+\\], got "0"`));
    assert.match(String(await serveFlags('--agent', 'momentum', flag, 'soon')), new RegExp(`${flag}: expected an integer`));
  }
});

test('the bearer scheme name is case-insensitive: "bearer KEY" and "BEARER KEY" are accepted', async () => {
  const server = new PolicyServer({ scorer: scorer(), apiKey: 'k-1' });
  const url = await server.listen();
  try {
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
      assert.equal((await fetch(`${url}/v1/models`, { headers: { Authorization: `${scheme} k-1` } })).status, 200, scheme);
    }
    assert.equal((await fetch(`${url}/v1/models`, { headers: { Authorization: 'Basic k-1' } })).status, 401);
    assert.equal((await fetch(`${url}/v1/models`, { headers: { Authorization: 'bearer K-1' } })).status, 401, 'the key itself is case-sensitive');
  } finally {
    await server.close();
  }
});
