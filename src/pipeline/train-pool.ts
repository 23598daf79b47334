/**
 * Train several independent runs at once, each in a child process (train-worker.ts), at most
 * `workers` at a time. A failing run fails the whole pool with its label and error once the runs in
 * flight have ended; finished runs stay on disk, so calling again continues where it stopped.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TrainConfig } from '../rl/config.js';

export interface TrainJob { dir: string; config: TrainConfig; label: string }

const WORKER = fileURLToPath(new URL(`./train-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

export async function trainInParallel(jobs: TrainJob[], workers: number, log: (m: string) => void = () => {}): Promise<void> {
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers must be a positive integer, got ${workers}`);
  const tmp = mkdtempSync(join(tmpdir(), 'flag-trader-pool-'));
  const failures: string[] = [];
  let next = 0;
  const runOne = (job: TrainJob, i: number): Promise<void> => new Promise((resolve) => {
    const file = join(tmp, `job${i}.json`);
    writeFileSync(file, JSON.stringify(job.config));
    const t0 = Date.now();
    // The parent's loader flags (tsx when running from source) carry over to the child.
    const child = spawn(process.execPath, [...process.execArgv, WORKER, job.dir, file], { stdio: ['ignore', 'ignore', 'pipe'] });
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
