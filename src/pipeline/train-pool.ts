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

/** The fields that make a run what its folder says it is (its id): reused or resumed runs must match them. */
const IDENTITY: Array<keyof TrainConfig> = ['policy', 'seed', 'data', 'format', 'ticker', 'price_column', 'train_start', 'train_end', 'test_start', 'test_end'];

/** Throws, naming the differences, when the job's folder holds a run (config.json) of another policy, seed, data file or window. */
export function checkRunIdentity(job: Pick<TrainJob, 'dir' | 'config' | 'label'>): void {
  if (!existsSync(join(job.dir, RUN_FILES.config))) return;
  const had = readRunRecord(job.dir).config;
  const differ = IDENTITY.filter((k) => JSON.stringify(had[k]) !== JSON.stringify(job.config[k]));
  if (differ.length > 0) {
    throw new Error(`${job.dir} holds another run than ${job.label}: ${differ.map((k) => `${k} ${JSON.stringify(had[k])} there, ${JSON.stringify(job.config[k])} here`).join('; ')}; choose another --out or remove the folder`);
  }
}

/**
 * Train the job's run, or resume it (a folder with config.json but no final policy), or leave it (a
 * finished run). A folder holding a run of another policy, seed, data file or window is an error
 * naming the difference, never silently reused.
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
