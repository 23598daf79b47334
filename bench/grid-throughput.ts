/**
 * Grid throughput: the same small grid (the synthetic market, the LLM policy and the MLP ablation per
 * seed) trained with 1, 2 and 4 local worker processes (`reproduce --workers N`: cores / N threads
 * each) and on the BullMQ queue by two `flag-trader worker` processes on this machine (cores / 2 threads
 * each). Prints each setting's wall time, runs per hour, speed-up over one worker and scaling
 * efficiency (speed-up / workers), and whether every run's policy file equals that of the first setting
 * with the same thread count (a run's result depends on its thread count, not on where it ran).
 * Only the training is timed (not the evaluation or the report).
 *
 *   node --import tsx bench/grid-throughput.ts [--json] [--seeds 1,2,3,4] [--steps 200] [--model random:tiny]
 *                                              [--local 1,2,4] [--queue-workers 2] [--redis redis://HOST:PORT]
 *
 * The queue setting needs Redis: --redis URL, else a private redis-server (on the PATH) on a free port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { ANNUALIZATIONS } from '../src/eval/metrics.js';
import { checkRedis, queueNameFor, trainOnQueue } from '../src/pipeline/queue.js';
import { targetRunSpecs, type GridOptions, type ReproduceTarget } from '../src/pipeline/reproduce.js';
import { runDir, trainJobOf, type RunSpec } from '../src/pipeline/run-spec.js';
import { trainInParallel } from '../src/pipeline/train-pool.js';
import { RUN_FILES } from '../src/rl/run.js';
import { positiveInt } from '../src/util/options.js';
import { seedListOption } from '../src/util/seed.js';

const MAIN = fileURLToPath(new URL(`../src/cli/main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));
const TARGET: ReproduceTarget = { asset: 'SYNTH', data: 'synthetic', format: 'auto', annualization: { ...ANNUALIZATIONS.stock }, train: null, test: null };

interface Row { setting: string; workers: number; threads: number; runs: number; seconds: number; runsPerHour: number; speedup: number; efficiency: number; samePolicies: boolean }

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  });
}

async function privateRedis(dir: string): Promise<{ url: string; proc: ChildProcess }> {
  const bin = (process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'redis-server')).find((p) => existsSync(p));
  if (!bin) throw new Error('the queue setting needs Redis: pass --redis redis://HOST:PORT or install redis-server');
  const port = await freePort();
  const proc = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try { await checkRedis(url, 1000); return { url, proc }; } catch (e) { if (i > 50) throw e; await new Promise((r) => setTimeout(r, 100)); }
  }
}

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

async function main(): Promise<void> {
  const program = new Command('grid-throughput')
    .option('--json', 'print JSON')
    .option('--seeds <list>', 'seeds of the grid (each: the LLM policy and the MLP ablation)', seedListOption('--seeds'), [1, 2, 3, 4])
    .option('--steps <n>', 'total_timesteps per run', positiveInt('--steps'), 200)
    .option('--model <spec>', 'the LLM', 'random:tiny')
    .option('--local <list>', 'local worker counts', (v: string) => v.split(',').map(Number), [1, 2, 4])
    .option('--queue-workers <n>', 'queue workers (0: no queue setting)', (v: string) => Number(v), 2)
    .option('--redis <url>', 'an existing Redis (default: a private redis-server)')
    .parse();
  const o = program.opts<{ json?: boolean; seeds: number[]; steps: number; model: string; local: number[]; queueWorkers: number; redis?: string }>();
  const cores = availableParallelism();
  const grid: GridOptions = {
    out: '', title: 'bench', seeds: o.seeds, mlpAblation: true, untrained: false, baselines: [],
    base: {
      model: o.model, trainable_layers: 1, prompt_style: 'compact', prompt_max_tokens: 600, head_input: 'last', total_timesteps: o.steps,
      num_steps: 20, minibatch_size: 20, gradient_accumulation_steps: 4, update_epochs: 1, lookback: 10, max_episode_steps: 20, synthetic_days: 300,
    },
  };
  const specs: RunSpec[] = targetRunSpecs(grid, TARGET);
  const tmp = mkdtempSync(join(tmpdir(), 'grid-throughput-'));
  const say = (m: string) => { if (!o.json) process.stderr.write(`${m}\n`); };
  const rows: Row[] = [];
  // The first setting of each thread count: OpenBLAS may sum in another order with another thread count.
  const reference = new Map<number, string>();
  const record = (setting: string, workers: number, threads: number, out: string, seconds: number) => {
    if (!reference.has(threads)) reference.set(threads, out);
    const ref = reference.get(threads)!;
    const same = specs.every((s) => sha(join(runDir(out, s.id), RUN_FILES.policy)) === sha(join(runDir(ref, s.id), RUN_FILES.policy)));
    const runsPerHour = (3600 * specs.length) / seconds;
    const base = rows[0]?.runsPerHour ?? runsPerHour;
    rows.push({ setting, workers, threads, runs: specs.length, seconds, runsPerHour, speedup: runsPerHour / base, efficiency: runsPerHour / base / workers, samePolicies: same });
    say(`${setting}: ${specs.length} runs in ${seconds.toFixed(1)} s`);
  };
  let redis: { url: string; proc: ChildProcess | null } | null = null;
  const workers: ChildProcess[] = [];
  try {
    for (const n of o.local) {
      const out = join(tmp, `local-${n}`);
      const threads = Math.max(1, Math.floor(cores / n));
      // LLM runs (the longest) first, as reproduce --workers does.
      const ordered = [...specs.filter((s) => s.policy === 'llm'), ...specs.filter((s) => s.policy !== 'llm')];
      const t0 = performance.now();
      await trainInParallel(ordered.map((s) => trainJobOf(s, out, { ...s.config, threads })), n);
      record(`local, ${n} worker${n === 1 ? '' : 's'}`, n, threads, out, (performance.now() - t0) / 1000);
    }
    if (o.queueWorkers > 0) {
      redis = o.redis ? { url: o.redis, proc: null } : await privateRedis(tmp);
      const out = join(tmp, 'queue');
      const threads = Math.max(1, Math.floor(cores / o.queueWorkers));
      const name = queueNameFor(out);
      const ready: Array<Promise<void>> = [];
      for (let i = 0; i < o.queueWorkers; i++) {
        const w = spawn(process.execPath, [...process.execArgv, MAIN, 'worker', '--queue', redis.url, '--queue-name', name, '--threads', String(threads)], { stdio: ['ignore', 'ignore', 'pipe'] });
        workers.push(w);
        ready.push(new Promise((resolve) => { w.stderr!.on('data', (d: Buffer) => { if (d.toString().includes('serving queue')) resolve(); }); }));
      }
      await Promise.all(ready);
      const t0 = performance.now();
      await trainOnQueue(specs, out, { url: redis.url, pollMs: 100 });
      record(`queue, ${o.queueWorkers} workers`, o.queueWorkers, threads, out, (performance.now() - t0) / 1000);
    }
  } finally {
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(workers.map((w) => new Promise((r) => { if (w.exitCode !== null) r(null); else w.once('exit', r); })));
    redis?.proc?.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
  }
  if (o.json) {
    process.stdout.write(JSON.stringify({ cores, model: o.model, steps: o.steps, seeds: o.seeds, runs: specs.length, rows }, null, 2) + '\n');
    return;
  }
  process.stdout.write(`grid: ${specs.length} runs (${o.model} and the MLP, seeds ${o.seeds.join(',')}, ${o.steps} steps each) on ${cores} cores\n\n`);
  process.stdout.write('| setting | threads each | wall s | runs / hour | speed-up | efficiency | policies = first with same threads |\n|---|---|---|---|---|---|---|\n');
  for (const r of rows) {
    process.stdout.write(`| ${r.setting} | ${r.threads} | ${r.seconds.toFixed(1)} | ${r.runsPerHour.toFixed(0)} | ${r.speedup.toFixed(2)}x | ${(100 * r.efficiency).toFixed(0)}% | ${r.samePolicies ? 'yes' : 'no'} |\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`grid-throughput: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
