/**
 * `flag-trader worker --queue redis://HOST:PORT`: train the runs of `reproduce --queue` grids on this
 * machine (src/pipeline/queue-worker.ts; docs/queue.md). Runs until SIGINT / SIGTERM, which stop the
 * runs in training and put their jobs back to waiting for other workers.
 */
import { Command, InvalidArgumentError } from 'commander';
import { resolve } from 'node:path';
import { parseRedisUrl } from '../pipeline/queue.js';
import { startQueueWorker } from '../pipeline/queue-worker.js';
import { parsePositiveInt } from './reproduce.js';

function queueUrl(v: string): string {
  try { return parseRedisUrl(v); } catch (e) { throw new InvalidArgumentError((e as Error).message.replace(/^--queue: /, '')); }
}

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('train the runs that `reproduce --queue` enqueues, on this machine (runs until stopped)')
    .requiredOption('--queue <url>', 'the Redis of the queue: redis://HOST:PORT', queueUrl)
    .option('--concurrency <n>', 'runs trained at once', parsePositiveInt, 1)
    .option('--threads <n>', 'compute threads per run (default: cores / concurrency)', parsePositiveInt)
    .option('--queue-name <name>', 'serve only this queue (default: every queue registered in Redis whose run root this machine has)')
    .option('--work-dir <dir>', 'where runs of grids enqueued with --queue-results redis train (default: <tmp>/flag-trader-worker)')
    .option('--lock-duration <ms>', 'BullMQ job lock: a run whose worker stops renewing it this long is handed to another worker', parsePositiveInt, 30_000)
    .option('--stalled-interval <ms>', 'how often this worker looks for stalled runs (their worker gone)', parsePositiveInt, 30_000)
    .option('--max-stalled <n>', 'times a run may stall (its worker gone) before it is reported failed', parsePositiveInt, 5)
    .option('--quiet', 'no progress lines')
    .action(async (opts: Record<string, unknown>) => {
      const log = (m: string) => { if (!opts.quiet) process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`); };
      const w = await startQueueWorker({
        url: opts.queue as string, concurrency: opts.concurrency as number,
        ...(opts.threads !== undefined && { threads: opts.threads as number }),
        ...(opts.queueName !== undefined && { queueName: opts.queueName as string }),
        ...(opts.workDir !== undefined && { workDir: resolve(opts.workDir as string) }),
        lockDuration: opts.lockDuration as number, stalledInterval: opts.stalledInterval as number, maxStalledCount: opts.maxStalled as number,
        log,
      });
      await new Promise<void>((done) => {
        let stopping = false;
        const stop = (sig: string) => {
          if (stopping) { log(`${sig} again: exiting now`); process.exit(130); }
          stopping = true;
          log(`${sig}: stopping; the runs in training go back to the queue`);
          w.close().then(done, done);
        };
        process.on('SIGINT', () => stop('SIGINT'));
        process.on('SIGTERM', () => stop('SIGTERM'));
      });
      process.exit(0); // connections that a Redis outage left half-open must not keep the process alive
    });
}
