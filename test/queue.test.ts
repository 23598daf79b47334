// The grid on BullMQ (reproduce --queue, flag-trader worker; src/pipeline/queue.ts, queue-worker.ts),
// against a private redis-server: job ids are the RunSpec ids and enqueueing again adds nothing; a
// grid trained by two workers is bit-identical to the local grid; a worker killed mid-run (SIGKILL, its
// training child with it) leaves a job that another worker takes after the stall interval and resumes
// from the checkpoint, with the same final results; a failing run is retried, then reported (the CLI
// exits non-zero naming it), while the other run comes back through Redis (--queue-results redis); a
// Redis that restarts empty loses no finished run (walk-forward); and the CLI's errors for bad URLs and
// unreachable Redis.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { syntheticMarket } from '../src/data/synthetic.js';
import { ANNUALIZATIONS } from '../src/eval/metrics.js';
import { parseWalkForwardSpec } from '../src/eval/walk-forward.js';
import { GridQueue, parseRedisUrl, queueNameFor, type QueueJobResult } from '../src/pipeline/queue.js';
import { queueOptions } from '../src/cli/reproduce.js';
import { reproduce, targetRunSpecs, type ReproduceOptions, type ReproduceTarget } from '../src/pipeline/reproduce.js';
import { runDir, type RunSpec } from '../src/pipeline/run-spec.js';
import { planWalkForward, walkForward, type WalkForwardOptions } from '../src/pipeline/walk-forward.js';
import { LOCK_FILE } from '../src/rl/run-lock.js';
import { RUN_FILES } from '../src/rl/run.js';
import { metricsOf } from './run-helpers.js';
import { freePort, needsRedis, RedisServer } from './redis-helpers.js';

const skip = needsRedis();
const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const TMP = mkdtempSync(join(tmpdir(), 'queue-test-'));
process.on('exit', () => rmSync(TMP, { recursive: true, force: true }));

/** 6 updates of 20 steps of the tiny random-weight LLM (and the MLP), a checkpoint every 2. */
const BASE = {
  model: 'random:tiny', trainable_layers: 1, prompt_style: 'compact', prompt_max_tokens: 600, head_input: 'last',
  total_timesteps: 120, num_steps: 20, minibatch_size: 20, gradient_accumulation_steps: 4, update_epochs: 1, checkpoint_every: 2,
  lookback: 10, max_episode_steps: 20, mlp_hidden: [16, 16], synthetic_days: 200, threads: 1,
};
// As `reproduce --data synthetic` makes it.
const TARGET: ReproduceTarget = { asset: 'SYNTH', data: 'synthetic', format: 'auto', ticker: null, priceColumn: null, annualization: { ...ANNUALIZATIONS.stock }, train: null, test: null };

function options(out: string, seeds: number[], over: Partial<ReproduceOptions> = {}): ReproduceOptions {
  return {
    out, title: 'queue test', targets: [TARGET], seeds, base: BASE, mlpAblation: true, untrained: false,
    baselines: [], bootstrapResamples: 20, ...over,
  };
}

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

/** Each run's policy sha256 and metrics (timing fields removed) are those of the local grid. */
function assertSameRuns(specs: RunSpec[], out: string, reference: string): void {
  for (const s of specs) {
    const [a, b] = [runDir(out, s.id), runDir(reference, s.id)];
    assert.equal(sha(join(a, RUN_FILES.policy)), sha(join(b, RUN_FILES.policy)), `${s.id}: policy`);
    assert.deepEqual(metricsOf(a), metricsOf(b), `${s.id}: metrics`);
  }
}

interface WorkerProc { proc: ChildProcess; lines: string[]; waitFor(re: RegExp, ms?: number): Promise<string>; stop(): Promise<void>; killGroup(): Promise<void> }

/** A `flag-trader worker` process (its own process group, so that its training children can be killed with it). */
function startWorker(url: string, args: string[] = []): WorkerProc {
  const proc = spawn(process.execPath, [MAIN, 'worker', '--queue', url, '--threads', '1', ...args], {
    detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, FLAG_TRADER_THREADS: '1' },
  });
  const lines: string[] = [];
  let buf = '';
  proc.stderr!.on('data', (d: Buffer) => { buf += d.toString(); const l = buf.split('\n'); buf = l.pop()!; lines.push(...l); });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const w: WorkerProc = {
    proc, lines,
    waitFor: async (re, ms = 20_000) => {
      const t0 = Date.now();
      for (;;) {
        const hit = lines.find((l) => re.test(l));
        if (hit) return hit;
        if (proc.exitCode !== null || Date.now() - t0 > ms) throw new Error(`worker: no line matching ${re} within ${ms} ms:\n${lines.join('\n')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop: async () => { if (proc.exitCode === null) { proc.kill('SIGTERM'); await exited; } },
    killGroup: async () => { if (proc.exitCode === null) { process.kill(-proc.pid!, 'SIGKILL'); await exited; } },
  };
  workers.push(w);
  return w;
}
const workers: WorkerProc[] = [];
let redis: RedisServer | null = null;
after(async () => {
  for (const w of workers) { try { process.kill(-w.proc.pid!, 'SIGKILL'); } catch { /* gone */ } }
  await redis?.stop();
});

/** A command's exit status and stderr, without blocking this process (the workers' output keeps flowing). */
function runCli(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, FLAG_TRADER_THREADS: '1' } });
    let stderr = '';
    p.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    p.on('close', (status) => resolve({ status, stderr }));
  });
}

async function jobsOf(url: string, name: string): Promise<QueueJobResult[]> {
  const q = new Queue(name, { connection: { url } });
  try { return (await q.getJobs(['completed'])).map((j) => j.returnvalue as QueueJobResult); } finally { await q.close(); }
}

// The local grid, seeds 1 and 2: the reference every queued run must equal.
const REF = join(TMP, 'local');
let refDone: Promise<void> | null = null;
function reference(): Promise<void> {
  refDone ??= reproduce(options(REF, [1, 2])).then(() => {});
  return refDone;
}

test('queue: job ids are the RunSpec ids, the queue name follows the run root, enqueueing again adds nothing', { skip, timeout: 60_000 }, async () => {
  redis ??= await RedisServer.start();
  const refP = reference();
  const out = join(TMP, 'ids');
  const specs = targetRunSpecs(options(out, [1, 2]), TARGET);
  assert.deepEqual(specs.map((s) => s.id), ['SYNTH/llm-seed1', 'SYNTH/mlp-seed1', 'SYNTH/llm-seed2', 'SYNTH/mlp-seed2']);
  assert.equal(queueNameFor(out), queueNameFor(`${out}/`));
  assert.match(queueNameFor(out), /^flag-trader\.ids\.[0-9a-f]{12}$/);
  assert.notEqual(queueNameFor(out), queueNameFor(join(TMP, 'other', 'ids')));
  const q = new GridQueue(redis.url, out);
  try {
    const first = await q.enqueue(specs);
    assert.deepEqual(first.added.sort(), specs.map((s) => s.id).sort());
    const jobs = await q.queue.getJobs(['waiting']);
    assert.deepEqual(jobs.map((j) => j.id).sort(), specs.map((s) => s.id).sort());
    const again = await q.enqueue(specs);
    assert.deepEqual([again.added, again.present.length], [[], 4]);
    assert.equal((await q.queue.getJobCounts('waiting')).waiting, 4, 'no duplicates');
    // A run already finished in the run root is not enqueued.
    await refP;
    const done = runDir(out, specs[1]!.id);
    mkdirSync(join(done, '..'), { recursive: true });
    cpSync(runDir(REF, specs[1]!.id), done, { recursive: true });
    await q.queue.obliterate({ force: true });
    const third = await q.enqueue(specs);
    assert.deepEqual([third.finished, third.added.length], [[specs[1]!.id], 3]);
    await q.queue.obliterate({ force: true });
    await q.unregister();
  } finally {
    await q.close();
  }
});

test('queue: a grid trained by two workers equals the local grid bit for bit; a finished job is not redone', { skip, timeout: 120_000 }, async () => {
  redis ??= await RedisServer.start();
  const refP = reference();
  const out = join(TMP, 'two');
  const name = queueNameFor(out);
  const a = startWorker(redis.url, ['--queue-name', name]);
  const b = startWorker(redis.url, ['--queue-name', name]);
  await Promise.all([a.waitFor(/serving queue/), b.waitFor(/serving queue/), refP]);
  const logs: string[] = [];
  await reproduce(options(out, [1, 2], { queue: { url: redis.url, pollMs: 200 }, log: (m) => logs.push(m) }));
  const specs = targetRunSpecs(options(out, [1, 2]), TARGET);
  assertSameRuns(specs, out, REF);
  assert.equal(readFileSync(join(out, 'results.json'), 'utf8'), readFileSync(join(REF, 'results.json'), 'utf8'), 'results.json');
  const results = await jobsOf(redis.url, name);
  assert.deepEqual(results.map((r) => r.status), ['trained', 'trained', 'trained', 'trained']);
  assert.equal(new Set(results.map((r) => r.worker)).size, 2, 'both workers trained runs');
  for (const r of results) assert.equal(r.manifest[RUN_FILES.policy], sha(join(runDir(out, r.id), RUN_FILES.policy)));
  assert.ok(logs.some((l) => /\[\d\/4\] SYNTH\/llm-seed1: training on \S+ \(attempt 1 of 3\)/.test(l)), logs.join('\n'));
  assert.ok(logs.some((l) => /\[\d\/4\] SYNTH\/llm-seed1: completed \(trained on \S+ in \d+ s\)/.test(l)), logs.join('\n'));

  // Enqueued again: every run is finished in the run root (nothing added), and a completed job is left alone.
  const q = new GridQueue(redis.url, out);
  try {
    const s = await q.enqueue(specs);
    assert.deepEqual([s.finished.length, s.added, s.retried], [4, [], []]);
    assert.equal(await q.add(specs[0]!), 'present');
    assert.equal(await (await q.queue.getJob(specs[0]!.id))!.getState(), 'completed');
    await q.unregister();
  } finally {
    await q.close();
  }
  await Promise.all([a.stop(), b.stop()]);
});

test('queue: a worker killed mid-run (SIGKILL with its child): another worker takes the job after the stall interval and resumes from the checkpoint; same results', { skip, timeout: 120_000 }, async () => {
  redis ??= await RedisServer.start();
  await reference();
  const out = join(TMP, 'kill');
  const name = queueNameFor(out);
  const fast = ['--queue-name', name, '--lock-duration', '1000', '--stalled-interval', '500'];
  const a = startWorker(redis.url, fast);
  await a.waitFor(/serving queue/);
  const logs: string[] = [];
  // The LLM run only (the run is the local grid's llm-seed1).
  const grid = reproduce(options(out, [1], { mlpAblation: false, queue: { url: redis.url, pollMs: 200 }, log: (m) => logs.push(m) }));
  grid.catch(() => {}); // awaited below
  const dir = runDir(out, 'SYNTH/llm-seed1');
  for (let i = 0; !existsSync(join(dir, RUN_FILES.checkpoint)); i++) {
    assert.ok(i < 600, `no checkpoint in ${dir}:\n${a.lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  await a.killGroup();
  assert.ok(!existsSync(join(dir, RUN_FILES.policy)), 'killed before the end of the run');
  assert.ok(existsSync(join(dir, LOCK_FILE)), 'the killed child left its lock');
  const b = startWorker(redis.url, fast);
  await grid;
  await b.waitFor(/SYNTH\/llm-seed1: resumed in/);
  assert.ok(b.lines.some((l) => /taking over the lock .*train\.lock left by an earlier attempt of queue job/.test(l)), b.lines.join('\n'));
  assert.ok(b.lines.some((l) => /resuming .* from update [24] of 6/.test(l)), b.lines.join('\n'));
  assertSameRuns(targetRunSpecs(options(out, [1], { mlpAblation: false }), TARGET), out, REF);
  const r = (await jobsOf(redis.url, name)).find((x) => x.id === 'SYNTH/llm-seed1')!;
  assert.equal(r.status, 'resumed');
  assert.match(r.worker, new RegExp(`:${b.proc.pid}$`));
  await b.stop();
});

test('queue: a failing run is retried --attempts times, then reported with its error (the CLI exits non-zero naming it); with --queue-results redis the other run comes back through Redis', { skip, timeout: 120_000 }, async () => {
  redis ??= await RedisServer.start();
  await reference();
  const out = join(TMP, 'fail');
  const work = join(TMP, 'work');
  const name = queueNameFor(out, 'redis');
  assert.notEqual(name, queueNameFor(out, 'shared'));
  // In the worker's own folder, the MLP run holds a broken config.json: every attempt fails on it.
  const broken = runDir(join(work, name), 'SYNTH/mlp-seed1');
  mkdirSync(broken, { recursive: true });
  writeFileSync(join(broken, RUN_FILES.config), 'garbage');
  const w = startWorker(redis.url, ['--queue-name', name, '--work-dir', work]);
  const config = join(TMP, 'fail-config.json');
  writeFileSync(config, JSON.stringify(BASE));
  const r = await runCli([MAIN, 'reproduce', '--data', 'synthetic', '--seeds', '1', '--config', config, '--out', out, '--baselines', '', '--bootstrap-resamples', '20',
    '--no-untrained', '--queue', redis.url, '--queue-results', 'redis', '--attempts', '2', '--backoff', '100']);
  assert.equal(r.status, 1, r.stderr);
  // The enqueuer polls once a second, so it may or may not see the first attempt's failure before the
  // retry starts: the retries are counted on the worker (below), not in its progress lines.
  assert.match(r.stderr, /flag-trader: 1 of 2 runs failed on queue flag-trader\.fail\.[0-9a-f]{12}: SYNTH\/mlp-seed1: .*mlp-seed1\/config\.json: .*not valid JSON \(after 2 attempts\)/);
  await w.waitFor(/SYNTH\/mlp-seed1: failed: /);
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(w.lines.filter((l) => /SYNTH\/mlp-seed1: failed:/.test(l)).length, 2, w.lines.join('\n'));
  // The LLM run trained in the worker's folder and came back through Redis into the run root; its job is gone.
  const llm = targetRunSpecs(options(out, [1], { mlpAblation: false }), TARGET);
  assertSameRuns(llm, out, REF);
  assertSameRuns(llm, join(work, name), REF);
  assert.match(r.stderr, new RegExp(`SYNTH/llm-seed1: completed \\(trained on \\S+ in \\d+ s\\); files written to ${runDir(out, 'SYNTH/llm-seed1')}`));
  // Enqueued again, the failed job gets fresh attempts; the finished run is not enqueued.
  const q = new GridQueue(redis.url, out, { results: 'redis' });
  try {
    await w.stop();
    assert.equal(await q.queue.getJob('SYNTH/llm-seed1'), undefined, 'removed once its files were written');
    const s = await q.enqueue(targetRunSpecs(options(out, [1]), TARGET));
    assert.deepEqual([s.finished, s.retried], [['SYNTH/llm-seed1'], ['SYNTH/mlp-seed1']]);
    await q.queue.obliterate({ force: true });
    await q.unregister();
  } finally {
    await q.close();
  }
});

test('queue: Redis restarting empty loses no finished run (walk-forward on the queue equals the local walk)', { skip, timeout: 120_000 }, async () => {
  const own = await RedisServer.start();
  try {
    const market = syntheticMarket({ seed: 3, days: 62 });
    const root: Record<string, { prices: number; news: string[] }> = {};
    market.dates.forEach((d, i) => { root[d] = { prices: market.prices[i]!, news: market.text![i]!.map((t) => t.text) }; });
    mkdirSync(join(TMP, 'market'), { recursive: true });
    const data = join(TMP, 'market', 'market.json');
    writeFileSync(data, JSON.stringify(root));
    const wf = (out: string, over: Partial<WalkForwardOptions> = {}): WalkForwardOptions => ({
      out, title: 'wf', seeds: [1], base: { ...BASE, total_timesteps: 80 }, mlpAblation: false, untrained: false, baselines: [],
      targets: [{ asset: 'SYN', data, format: 'investorbench', annualization: { ...ANNUALIZATIONS.stock } }],
      spec: parseWalkForwardSpec('40:10:10'), bootstrapResamples: 20, ...over,
    });
    const local = join(TMP, 'wf-local');
    await walkForward(wf(local));
    const out = join(TMP, 'wf-queue');
    mkdirSync(out, { recursive: true }); // the worker serves registered queues whose run root it has
    const w = startWorker(own.url, ['--lock-duration', '1000', '--stalled-interval', '500']);
    await w.waitFor(/worker \S+ on redis/);
    const logs: string[] = [];
    const grid = walkForward(wf(out, { queue: { url: own.url, pollMs: 200 }, log: (m) => logs.push(m) }));
    grid.catch(() => {}); // awaited below
    const plan = await planWalkForward(wf(out));
    assert.equal(plan.runs.length, 2);
    const first = runDir(out, plan.runs[0]!.id);
    for (let i = 0; !existsSync(join(first, RUN_FILES.policy)); i++) {
      assert.ok(i < 1200, `${first} never finished:\n${w.lines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    await own.restart();
    await grid;
    assert.ok(logs.some((l) => /: not in the queue \(Redis restarted or the job was removed\): enqueued again/.test(l)), logs.join('\n'));
    assert.ok(!logs.some((l) => l.includes(`${plan.runs[0]!.id}: not in the queue`)), 'the finished run is not enqueued again');
    assertSameRuns(plan.runs, out, local);
    assert.equal(readFileSync(join(out, 'results.json'), 'utf8'), readFileSync(join(local, 'results.json'), 'utf8'));
    await w.stop();
  } finally {
    await own.stop();
  }
});

test('queue CLI: a bad URL and an unreachable Redis are clear errors within seconds; queue flags need --queue', { skip, timeout: 60_000 }, async () => {
  const port = await freePort();
  const cli = (...args: string[]) => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, err: r.stderr, seconds: (Date.now() - t0) / 1000 };
  };
  const out = join(TMP, 'cli');
  let r = cli('reproduce', '--data', 'synthetic', '--out', out, '--queue', 'http://127.0.0.1:6379');
  assert.equal(r.status, 1);
  assert.match(r.err, /--queue.*"http:\/\/127\.0\.0\.1:6379": expected redis:\/\/HOST:PORT/);
  r = cli('reproduce', '--data', 'synthetic', '--out', out, '--queue', `redis://127.0.0.1:${port}`);
  assert.equal(r.status, 1);
  assert.match(r.err, new RegExp(`flag-trader: cannot reach Redis at redis://127\\.0\\.0\\.1:${port}`));
  assert.ok(r.seconds < 15, `took ${r.seconds} s`);
  r = cli('worker', '--queue', `redis://127.0.0.1:${port}`);
  assert.equal(r.status, 1);
  assert.match(r.err, new RegExp(`flag-trader: cannot reach Redis at redis://127\\.0\\.0\\.1:${port}`));
  assert.ok(r.seconds < 15, `took ${r.seconds} s`);
  assert.ok(!existsSync(out), 'nothing written');
  assert.throws(() => parseRedisUrl('redis://'), /"redis:\/\/": no host; expected redis:\/\/HOST:PORT/);
  assert.throws(() => parseRedisUrl('localhost:6379'), /expected redis:\/\/HOST:PORT/);
  assert.equal(parseRedisUrl('redis://h:1/2'), 'redis://h:1/2');
  const given = (...names: string[]) => (n: string) => names.includes(n);
  assert.throws(() => queueOptions({ attempts: 2 }, given('attempts')), /--attempts applies only with --queue redis:\/\/HOST:PORT/);
  assert.throws(() => queueOptions({ queue: 'redis://h', workers: 2 }, given('workers')), /--workers trains the runs here and --queue on `flag-trader worker` processes: give one or the other/);
  assert.deepEqual(queueOptions({ queue: 'redis://h', attempts: 3, backoff: 10, queueResults: 'redis' }, given()), { url: 'redis://h', attempts: 3, backoffMs: 10, results: 'redis' });
});
