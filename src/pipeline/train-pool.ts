/**
 * The job code of every grid run (reproduce, its walk-forward, demo): runTrainJob trains, resumes or
 * reuses one run, in this process or in a child (train-worker.ts calls the same function; spawnTrainJob
 * starts one); trainInParallel runs several at once in child processes, at most `workers` at a time,
 * and the queue workers of src/pipeline/queue-worker.ts run each job they take the same way. A failing
 * run fails the whole pool with its label and error once the runs in flight have ended; finished runs
 * stay on disk, so calling again continues where it stopped.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TrainConfig } from '../rl/config.js';
import { readRunRecord, runTraining, RUN_FILES } from '../rl/run.js';

export interface TrainJob {
  dir: string;
  config: TrainConfig;
  label: string;
  /** The queue job this run is trained for (`<queue>/<job id>`): recorded in train.lock (src/rl/run-lock.ts). */
  lockJob?: string;
}

export type TrainJobStatus = 'reused' | 'resumed' | 'trained';

/**
 * Settings that do not change what a run computes: they may differ when a run is reused or resumed
 * (a queue worker sets its own thread count). Every other training setting must match, so that a
 * folder trained with other settings is never reported as this run.
 */
const RUNTIME_ONLY: ReadonlySet<string> = new Set(['threads', 'checkpoint_every', 'prefix_cache_mb', 'rollout_cache_mb']);

/** Throws, naming the differences, when the job's folder holds a run (config.json) trained with other settings (policy, seed, data, window, model, PPO values...). */
export function checkRunIdentity(job: Pick<TrainJob, 'dir' | 'config' | 'label'>): void {
  if (!existsSync(join(job.dir, RUN_FILES.config))) return;
  const had = readRunRecord(job.dir).config as Record<string, unknown>;
  const want = job.config as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(had), ...Object.keys(want)])].filter((k) => !RUNTIME_ONLY.has(k));
  const differ = keys.filter((k) => JSON.stringify(had[k]) !== JSON.stringify(want[k]));
  if (differ.length > 0) {
    throw new Error(`${job.dir} holds another run than ${job.label}: ${differ.map((k) => `${k} ${JSON.stringify(had[k])} there, ${JSON.stringify(want[k])} here`).join('; ')}; choose another --out or remove the folder`);
  }
}

/**
 * Train the job's run, or resume it (a folder with config.json but no final policy), or leave it (a
 * finished run). A folder holding a run trained with other settings is an error naming the
 * differences, never silently reused.
 */
export async function runTrainJob(job: TrainJob, hooks: { log?: (m: string) => void; onUpdate?: (m: { update: number }) => void } = {}): Promise<TrainJobStatus> {
  const log = hooks.log ?? (() => {});
  const lock = job.lockJob !== undefined ? { lockJob: job.lockJob } : {};
  if (existsSync(join(job.dir, RUN_FILES.config))) {
    checkRunIdentity(job);
    if (existsSync(join(job.dir, RUN_FILES.policy))) {
      log(`${job.label}: reusing the finished run in ${job.dir}`);
      return 'reused';
    }
    log(`${job.label}: resuming ${job.dir}`);
    await runTraining({ out: job.dir, resume: true, log, ...lock, ...(hooks.onUpdate && { onUpdate: hooks.onUpdate }) });
    return 'resumed';
  }
  await runTraining({ out: job.dir, config: job.config, log, ...lock, ...(hooks.onUpdate && { onUpdate: hooks.onUpdate }) });
  return 'trained';
}

const WORKER = fileURLToPath(new URL(`./train-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

/** What a training child reports on its stdout, one JSON object a line (train-worker.ts). */
export type TrainEvent =
  | { event: 'update'; update: number; updates: number }
  | { event: 'log'; message: string }
  | { event: 'done'; status: TrainJobStatus };

export interface SpawnedTrainJob {
  /** The child's pid. */
  pid: number;
  /** Settles when the child exits: its status, or an error `<label>: <its stderr>`. */
  done: Promise<{ status: TrainJobStatus; seconds: number }>;
}

/**
 * Run one job in a child process (train-worker.ts, i.e. runTrainJob). `onEvent` gets the child's
 * progress; aborting `signal` kills the child at once (SIGKILL: it keeps no state worth saving that
 * its last checkpoint does not hold; its train.lock is then stale, and the next taker takes it over).
 */
export function spawnTrainJob(job: TrainJob, opts: { signal?: AbortSignal; onEvent?: (e: TrainEvent) => void } = {}): SpawnedTrainJob {
  const t0 = Date.now();
  // The job goes in on stdin (no file to leave behind when this process is killed). The parent's
  // loader flags (tsx when running from source) carry over to the child.
  const child = spawn(process.execPath, [...process.execArgv, WORKER, '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => { /* the child's exit says why */ });
  child.stdin.end(JSON.stringify(job));
  let err = '';
  let out = '';
  let status: TrainJobStatus | null = null;
  const onLine = (line: string) => {
    if (line.trim() === '') return;
    let e: TrainEvent;
    try { e = JSON.parse(line) as TrainEvent; } catch { return; }
    if (e.event === 'done') status = e.status;
    opts.onEvent?.(e);
  };
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const lines = out.split('\n');
    out = lines.pop()!;
    lines.forEach(onLine);
  });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const kill = () => { child.kill('SIGKILL'); };
  opts.signal?.addEventListener('abort', kill, { once: true });
  const done = new Promise<{ status: TrainJobStatus; seconds: number }>((resolve, reject) => {
    child.on('error', (e) => { err += e.message; });
    child.on('close', (code, signal) => {
      opts.signal?.removeEventListener('abort', kill);
      onLine(out);
      const seconds = (Date.now() - t0) / 1000;
      if (code === 0 && status) resolve({ status, seconds });
      else if (opts.signal?.aborted) reject(new Error(`${job.label}: stopped (${String(opts.signal.reason ?? 'aborted')})`));
      else reject(new Error(`${job.label}: ${err.trim() || (signal ? `killed by ${signal}` : `exit code ${code}`)}`));
    });
  });
  if (opts.signal?.aborted) kill();
  return { pid: child.pid ?? -1, done };
}

export async function trainInParallel(jobs: TrainJob[], workers: number, log: (m: string) => void = () => {}): Promise<void> {
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers must be a positive integer, got ${workers}`);
  const failures: string[] = [];
  let next = 0;
  const runOne = async (job: TrainJob): Promise<void> => {
    try {
      const { seconds } = await spawnTrainJob(job).done;
      log(`${job.label}: trained in ${seconds.toFixed(0)} s`);
    } catch (e) {
      failures.push((e as Error).message);
    }
  };
  const lane = async (): Promise<void> => {
    while (next < jobs.length && failures.length === 0) {
      const i = next++;
      await runOne(jobs[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(workers, jobs.length) }, lane));
  if (failures.length) throw new Error(`training failed: ${failures.join('; ')}`);
}
