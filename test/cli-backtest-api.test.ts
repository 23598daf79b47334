// `flag-trader backtest --agent openai` end to end: the CLI process talks to a policy server on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyServer } from '../src/serve/server.js';
import { createScorer } from '../src/serve/scorers.js';

const run = promisify(execFile);
const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

test('backtest --agent openai,momentum: the API row equals the momentum row; the log and stats are written', { timeout: 60_000 }, async () => {
  const server = new PolicyServer({ scorer: await createScorer('agent', { agent: 'momentum' }) });
  const url = await server.listen();
  const dir = mkdtempSync(join(tmpdir(), 'cli-api-'));
  try {
    const { stdout, stderr } = await run(process.execPath, [...CLI, 'backtest', '--agent', 'openai,momentum', '--json',
      '--base-url', `${url}/v1`, '--api-model', 'baseline-momentum', '--api-attach-observation',
      '--api-log', join(dir, 'api.jsonl'), '--start', '2020-06-01', '--end', '2020-08-31', '--seed', '3']);
    const [api, mom] = JSON.parse(stdout) as Array<{ agent: string; prices: number; positions: number[]; metrics: Record<string, number> }>;
    assert.match(api!.agent, /baseline-momentum/);
    assert.equal(mom!.agent, 'momentum');
    assert.deepEqual(api!.positions, mom!.positions);
    assert.deepEqual(api!.metrics, mom!.metrics);
    assert.equal(server.stats.requests, api!.prices - 1, 'one request per trading decision');
    assert.match(stderr, new RegExp(`${api!.prices - 1} decisions, ${api!.prices - 1} requests, 0 cache hits, 0 unparseable replies, 0 fallbacks`));
    const lines = readFileSync(join(dir, 'api.jsonl'), 'utf8').trim().split('\n');
    assert.equal(lines.length, api!.prices - 1 + 1, 'one line per decision plus a stats line');
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('backtest --agent openai without --base-url fails with a clear message', { timeout: 30_000 }, async () => {
  await assert.rejects(run(process.execPath, [...CLI, 'backtest', '--agent', 'openai']), (e: { code: number; stderr: string }) => {
    assert.equal(e.code, 1);
    assert.match(e.stderr, /--base-url is required/);
    return true;
  });
});
