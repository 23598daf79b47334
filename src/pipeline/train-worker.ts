/**
 * One training run in its own process, for `reproduce --workers N` / `demo --workers N`: the runs of a
 * grid are independent, so N processes with 1/N of the threads each keep every core busy (small models
 * use one core poorly through BLAS threads). Usage (spawned by train-pool.ts):
 *   node [loader flags] train-worker.js JOB_JSON_FILE
 * where the file holds a TrainJob ({ dir, config, label }). The job runs through runTrainJob, the same
 * code as a run in the parent process: finished runs are left alone, started ones resumed, new ones
 * trained from the config; each run's result is the same as a run in the parent process with the same
 * config (threads included).
 */
import { readFileSync } from 'node:fs';
import { parseTrainConfig } from '../rl/config.js';
import { runTrainJob, type TrainJob } from './train-pool.js';

async function main(): Promise<void> {
  const [jobFile] = process.argv.slice(2);
  if (!jobFile) throw new Error('usage: train-worker JOB_JSON_FILE');
  const raw = JSON.parse(readFileSync(jobFile, 'utf8')) as TrainJob;
  await runTrainJob({ dir: raw.dir, label: raw.label, config: parseTrainConfig(raw.config, jobFile) });
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
