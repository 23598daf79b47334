/**
 * One training run in its own process, for `reproduce --workers N` / `demo --workers N` and for the
 * queue workers (`flag-trader worker`, src/pipeline/queue-worker.ts): the runs of a grid are
 * independent, so N processes with 1/N of the threads each keep every core busy (small models use one
 * core poorly through BLAS threads). Usage (spawned by spawnTrainJob, train-pool.ts):
 *   node [loader flags] train-worker.js JOB_JSON_FILE      (or `-`: the JSON on stdin)
 * where the file holds a TrainJob ({ dir, config, label, lockJob? }). The job runs through runTrainJob,
 * the same code as a run in the parent process: finished runs are left alone, started ones resumed,
 * new ones trained from the config; each run's result is the same as a run in the parent process with
 * the same config (threads included).
 *
 * Its stdout carries one JSON object a line (TrainEvent): the updates as they finish, the run's notes,
 * and at the end `{"event":"done","status":"trained"|"resumed"|"reused"}`. Errors go to stderr.
 *
 * A child whose parent process is gone (killed: a worker machine's process manager, SIGKILL) stops
 * after the update it is in (training is synchronous, so that is checked after each update), releasing
 * the run's lock; its last checkpoint is where the run resumes.
 */
import { readFileSync } from 'node:fs';
import { parseTrainConfig, runShape } from '../rl/config.js';
import { runTrainJob, type TrainEvent, type TrainJob } from './train-pool.js';

function emit(e: TrainEvent): void {
  process.stdout.write(JSON.stringify(e) + '\n');
}

async function main(): Promise<void> {
  const [jobFile] = process.argv.slice(2);
  if (!jobFile) throw new Error('usage: train-worker JOB_JSON_FILE (or - for stdin)');
  const raw = JSON.parse(readFileSync(jobFile === '-' ? 0 : jobFile, 'utf8')) as TrainJob;
  const config = parseTrainConfig(raw.config, jobFile === '-' ? `the job of ${raw.label}` : jobFile);
  const updates = runShape(config).numUpdates;
  const parent = process.ppid;
  const status = await runTrainJob({ dir: raw.dir, label: raw.label, config, ...(raw.lockJob !== undefined && { lockJob: raw.lockJob }) }, {
    log: (message) => emit({ event: 'log', message }),
    onUpdate: (m) => {
      emit({ event: 'update', update: m.update, updates });
      if (process.ppid !== parent) {
        process.stderr.write(`${raw.label}: the parent process ${parent} is gone; stopping after update ${m.update}\n`);
        process.exit(75); // the 'exit' listener of runTraining releases the run's lock
      }
    },
  });
  emit({ event: 'done', status });
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
