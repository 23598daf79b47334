/**
 * The job code of every grid run (reproduce, its walk-forward, demo): runTrainJob trains, resumes or
 * reuses one run, in this process or in a child (train-worker.ts calls the same function);
 * trainInParallel runs several at once in child processes, at most `workers` at a time. A failing run
 * fails the whole pool with its label and error once the runs in flight have ended; finished runs stay
 * on disk, so calling again continues where it stopped.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TrainConfig } from '../rl/config.js';
import { readRunRecord, runTraining, RUN_FILES } from '../rl/run.js';

export interface TrainJob { dir: string; config: TrainConfig; label: string }

/** The fields that make a run what its folder says it is (its id): reused or resumed runs must match them. */
const IDENTITY: Array<keyof TrainConfig> = ['policy', 'seed', 'data', 'format', 'ticker', 'price_column', 'train_start', 'train_end', 'test_start', 'test_end'];

/**
 * Train the job's run, or resume it (a folder with config.json but no final policy), or leave it (a
 * finished run). A folder holding a run of another policy, seed, data file or window is an error
 * naming the difference, never silently reused.
 */
export async function runTrainJob(job: TrainJob, hooks: { log?: (m: string) => void; onUpdate?: (m: { update: number }) => void } = {}): Promise<'reused' | 'resumed' | 'trained'> {
  const log = hooks.log ?? (() => {});
  if (existsSync(join(job.dir, RUN_FILES.config))) {
    const had = readRunRecord(job.dir).config;
    const differ = IDENTITY.filter((k) => JSON.stringify(had[k]) !== JSON.stringify(job.config[k]));
    if (differ.length > 0) {
      throw new Error(`${job.dir} holds another run than ${job.label}: ${differ.map((k) => `${k} ${JSON.stringify(had[k])} there, ${JSON.stringify(job.config[k])} here`).join('; ')}; choose another --out or remove the folder`);
    }
    if (existsSync(join(job.dir, RUN_FILES.policy))) {
      log(`${job.label}: reusing the finished run in ${job.dir}`);
      return 'reused';
    }
    log(`${job.label}: resuming ${job.dir}`);
    await runTraining({ out: job.dir, resume: true, log, ...(hooks.onUpdate && { onUpdate: hooks.onUpdate }) });
    return 'resumed';
  }
  await runTraining({ out: job.dir, config: job.config, log, ...(hooks.onUpdate && { onUpdate: hooks.onUpdate }) });
  return 'trained';
}

const WORKER = fileURLToPath(new URL(`./train-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

export async function trainInParallel(jobs: TrainJob[], workers: number, log: (m: string) => void = () => {}): Promise<void> {
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers must be a positive integer, got ${workers}`);
  const tmp = mkdtempSync(join(tmpdir(), 'flag-trader-pool-'));
  const failures: string[] = [];
  let next = 0;
  const runOne = (job: TrainJob, i: number): Promise<void> => new Promise((resolve) => {
    const file = join(tmp, `job${i}.json`);
    writeFileSync(file, JSON.stringify(job));
    const t0 = Date.now();
    // The parent's loader flags (tsx when running from source) carry over to the child.
    const child = spawn(process.execPath, [...process.execArgv, WORKER, file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('close', (code) => {
      if (code === 0) log(`${job.label}: trained in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      else failures.push(`${job.label}: ${err.trim() || `exit code ${code}`}`);
      resolve();
    });
  });
  const lane = async (): Promise<void> => {
    while (next < jobs.length && failures.length === 0) {
      const i = next++;
      await runOne(jobs[i]!, i);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(workers, jobs.length) }, lane));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (failures.length) throw new Error(`training failed: ${failures.join('; ')}`);
}
