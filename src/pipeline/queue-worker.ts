/**
 * `flag-trader worker --queue redis://HOST:PORT`: trains the runs that `reproduce --queue` enqueues
 * (src/pipeline/queue.ts), on any machine, through the same job code as a local run: each job is one
 * child process (spawnTrainJob -> train-worker.ts -> runTrainJob), which trains a new run, resumes a
 * started one from its checkpoint, or reuses a finished one.
 *
 * Queues. The worker serves every queue registered in the Redis hash flag-trader:queues (checked
 * every few seconds), or only `--queue-name`; a queue whose results go to a shared run root that does
 * not exist on this machine is skipped with a warning. At most `concurrency` jobs train at once over
 * all the queues, each with `threads` compute threads.
 *
 * Locks and faults. BullMQ gives a job to one worker and keeps it while that worker renews the job's
 * lock in Redis (every lockDuration / 2, from this process: training runs in the child, so a long
 * update never delays it). A worker killed with its machine stops renewing; after lockDuration the
 * job counts as stalled, and the stalled-job check of any worker (every stalledInterval) puts it back
 * to waiting, up to maxStalledCount times; the next worker resumes the run from its last checkpoint.
 * The run's train.lock records the queue job, so the next worker takes over the lock the killed one
 * left, on this host or another (src/rl/run-lock.ts). The other way round, a worker that cannot renew
 * a job's lock (Redis unreachable for lockDuration, or the lock taken from it) kills the job's child at
 * once, so that two workers never train one run. A training child whose worker process is gone stops
 * after its current update. SIGINT / SIGTERM: the children are stopped and their jobs put back to
 * waiting at once (no attempt is used up); a second signal exits at once.
 */
import { existsSync } from 'node:fs';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { codeVersion } from '../rl/provenance.js';
import { pidAlive, pidStartedAfter, readLock } from '../rl/run-lock.js';
import {
  checkRedis, connectionOf, JOB_FORMAT, lockJobOf, manifestHashes, parseRedisUrl, QUEUE_REGISTRY, readRunFiles, redisClient, showUrl,
  type QueueJobData, type QueueJobResult, type QueueRegistration,
} from './queue.js';
import { runDir } from './run-spec.js';
import { spawnTrainJob } from './train-pool.js';

export interface QueueWorkerOptions {
  url: string;
  /** Jobs trained at once (default 1). */
  concurrency?: number;
  /** Compute threads of each job (default: cores / concurrency, at least 1). */
  threads?: number;
  /** Serve only this queue (default: every registered one). */
  queueName?: string;
  /** Where runs of queues with results 'redis' train (default <tmpdir>/flag-trader-worker). */
  workDir?: string;
  /** BullMQ's job lock, in ms (default 30000). */
  lockDuration?: number;
  /** BullMQ's stalled-job check interval, in ms (default 30000). */
  stalledInterval?: number;
  /** Times a job may stall (its worker gone) before it fails (default 5). */
  maxStalledCount?: number;
  /** Registry check interval, in ms (default 2000). */
  discoverMs?: number;
  log?: (m: string) => void;
}

export interface QueueWorkerHandle {
  /** `<host>:<pid>`: the name jobs record as processedBy. */
  name: string;
  /** Stop: children killed, their jobs put back to waiting, connections closed. */
  close(): Promise<void>;
}

/** A counting semaphore shared by the queues' BullMQ workers: at most `n` jobs train at once. */
class Slots {
  private busy = 0;
  private waiting: Array<() => void> = [];
  constructor(private readonly n: number, private readonly changed: (full: boolean) => void) {}
  async take(): Promise<void> {
    if (this.busy < this.n) { this.busy++; this.changed(this.busy >= this.n); return; }
    await new Promise<void>((r) => this.waiting.push(r));
  }
  give(): void {
    const next = this.waiting.shift();
    if (next) { next(); return; } // the slot passes on
    this.busy--;
    this.changed(this.busy >= this.n);
  }
}

export async function startQueueWorker(opts: QueueWorkerOptions): Promise<QueueWorkerHandle> {
  const url = parseRedisUrl(opts.url);
  await checkRedis(url);
  const log = opts.log ?? (() => {});
  const concurrency = opts.concurrency ?? 1;
  const threads = opts.threads ?? Math.max(1, Math.floor(availableParallelism() / concurrency));
  const lockDuration = opts.lockDuration ?? 30_000;
  const stalledInterval = opts.stalledInterval ?? 30_000;
  const workDir = opts.workDir ?? join(tmpdir(), 'flag-trader-worker');
  const name = `${hostname()}:${process.pid}`;
  const code = codeVersion();
  const registry: Redis = redisClient(url);
  const workers = new Map<string, Worker<QueueJobData, QueueJobResult>>();
  const skipped = new Set<string>();
  const renewed = new Map<string, { at: number; abort: AbortController }>();
  let closing = false;

  // With several queues, the workers of the others stop fetching while every slot is busy.
  let gate = Promise.resolve();
  const slots = new Slots(concurrency, (full) => {
    if (workers.size < 2) return;
    gate = gate.then(async () => {
      for (const w of workers.values()) {
        if (full && !w.isPaused()) await w.pause(true);
        else if (!full && w.isPaused() && !closing) await w.resume();
      }
    }).catch(() => {});
  });

  // The watchdog: a job whose lock was not renewed for lockDuration is no longer ours.
  const watchdog = setInterval(() => {
    const now = Date.now();
    for (const [key, r] of renewed) {
      if (now - r.at > lockDuration && !r.abort.signal.aborted) r.abort.abort(`the job's lock was not renewed for ${lockDuration} ms`);
    }
  }, Math.min(1000, lockDuration / 4));

  const processor = (queueName: string) => async (job: Job<QueueJobData, QueueJobResult>, token?: string, signal?: AbortSignal): Promise<QueueJobResult> => {
    const data = job.data;
    if (data?.format !== JOB_FORMAT || data.version !== 1 || !data.spec?.id) throw new Error(`job ${job.id} of queue ${queueName} is not a flag-trader run (format ${JSON.stringify(data?.format)})`);
    const id = data.spec.id;
    const root = data.results === 'shared' ? data.runRoot : join(workDir, queueName);
    if (data.results === 'shared' && !existsSync(root)) {
      throw new Error(`the run root ${root} does not exist on worker ${name}: mount the shared run root at the same path on every worker, or enqueue with --queue-results redis`);
    }
    const dir = runDir(root, id);
    const lockJob = lockJobOf(queueName, job.id!);
    const key = `${queueName}\n${job.id}`;
    const abort = new AbortController();
    const onAbort = () => abort.abort(signal?.reason ?? 'cancelled');
    signal?.addEventListener('abort', onAbort, { once: true });
    renewed.set(key, { at: Date.now(), abort });
    await slots.take();
    try {
      if (closing) throw Object.assign(new Error('worker closing'), { putBack: true });
      log(`${id}: start (queue ${queueName}, attempt ${job.attemptsMade + 1}, ${threads} thread${threads === 1 ? '' : 's'})`);
      await waitForEarlierAttempt(dir, lockJob, abort.signal, (m) => log(`${id}: ${m}`));
      let lastProgress = 0;
      let latest: { update: number; updates: number } | null = null;
      const progress = () => { if (latest) { const p = latest; latest = null; lastProgress = Date.now(); job.updateProgress(p).catch(() => {}); } };
      const timer = setInterval(progress, 1000);
      try {
        const { status, seconds } = await spawnTrainJob({ dir, config: { ...data.spec.config, threads }, label: id, lockJob }, {
          signal: abort.signal,
          onEvent: (e) => {
            if (e.event === 'log') log(e.message.startsWith(`${id}: `) ? e.message : `${id}: ${e.message}`);
            else if (e.event === 'update') { latest = { update: e.update, updates: e.updates }; if (Date.now() - lastProgress > 1000) progress(); }
          },
        }).done;
        progress();
        log(`${id}: ${status} in ${seconds.toFixed(1)} s`);
        return {
          id, status, worker: name, seconds, manifest: manifestHashes(dir),
          ...(code.src_sha256 !== data.code?.src_sha256 && { codeDiffers: `worker ${name} runs code ${code.src_sha256.slice(0, 12)} (commit ${code.git_commit ?? 'n/a'}), the enqueuer ${String(data.code?.src_sha256).slice(0, 12)} (commit ${data.code?.git_commit ?? 'n/a'})` }),
          ...(data.results === 'redis' && { files: readRunFiles(dir) }),
        };
      } finally {
        clearInterval(timer);
      }
    } catch (e) {
      if (closing && token && ((e as { putBack?: boolean }).putBack || abort.signal.aborted)) {
        // Stopped by SIGINT/SIGTERM: back to waiting for another worker, without using up an attempt.
        await withTimeout(job.moveToWait(token), 5000).catch(() => {});
        log(`${id}: put back to waiting`);
        throw new WaitingError();
      }
      const message = (e as Error).message.startsWith(`${id}: `) ? (e as Error).message.slice(id.length + 2) : (e as Error).message;
      log(`${id}: failed: ${message}`);
      throw new Error(message);
    } finally {
      slots.give();
      renewed.delete(key);
      signal?.removeEventListener('abort', onAbort);
    }
  };

  const open = (queueName: string) => {
    const w = new Worker<QueueJobData, QueueJobResult>(queueName, processor(queueName), {
      connection: connectionOf(url), concurrency, name, lockDuration, stalledInterval, maxStalledCount: opts.maxStalledCount ?? 5,
    });
    let lastError = 0;
    w.on('error', (e) => {
      if (Date.now() - lastError > 30_000) log(`queue ${queueName}: ${e.message}`);
      lastError = Date.now();
    });
    w.on('locksRenewed', ({ jobIds }) => {
      for (const j of jobIds) { const r = renewed.get(`${queueName}\n${j}`); if (r) r.at = Date.now(); }
    });
    w.on('lockRenewalFailed', (jobIds) => {
      for (const j of jobIds) renewed.get(`${queueName}\n${j}`)?.abort.abort('the job\'s lock was lost');
    });
    w.on('stalled', (jobId) => log(`queue ${queueName}: job ${jobId} stalled (its worker stopped renewing it): back to waiting`));
    workers.set(queueName, w);
    log(`serving queue ${queueName}`);
  };

  const discover = async () => {
    if (closing) return;
    if (opts.queueName) { if (!workers.has(opts.queueName)) open(opts.queueName); return; }
    let all: Record<string, string>;
    try { all = await registry.hgetall(QUEUE_REGISTRY); } catch { return; }
    for (const [queueName, raw] of Object.entries(all)) {
      if (workers.has(queueName) || closing) continue;
      let reg: QueueRegistration;
      try { reg = JSON.parse(raw) as QueueRegistration; } catch { continue; }
      if (reg.results === 'shared' && !existsSync(reg.runRoot)) {
        if (!skipped.has(queueName)) log(`not serving queue ${queueName}: its run root ${reg.runRoot} does not exist on this machine (mount the shared folder at that path)`);
        skipped.add(queueName);
        continue;
      }
      skipped.delete(queueName);
      open(queueName);
    }
  };
  await discover();
  const discovery = setInterval(() => { void discover(); }, opts.discoverMs ?? 2000);
  log(`worker ${name} on ${showUrl(url)}: ${concurrency} job${concurrency === 1 ? '' : 's'} at a time, ${threads} thread${threads === 1 ? '' : 's'} each${opts.queueName ? `, queue ${opts.queueName}` : ''}`);

  return {
    name,
    close: async () => {
      if (closing) return;
      closing = true;
      clearInterval(discovery);
      for (const r of renewed.values()) r.abort.abort('the worker is stopping');
      // A Redis that does not answer must not keep the worker from stopping: then force the close.
      await Promise.all([...workers.values()].map((w) => withTimeout(w.close(), 10_000).catch(() => withTimeout(w.close(true), 2000)).catch(() => {})));
      clearInterval(watchdog);
      registry.disconnect();
    },
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(timer));
}

/**
 * Before a job trains its run: when the run's lock is held for this same job by a live process of this
 * host (the training child of a worker process that was killed, which stops after its current update),
 * wait for it to end. Any other holder is left to the lock's own rules (src/rl/run-lock.ts).
 */
async function waitForEarlierAttempt(dir: string, lockJob: string, signal: AbortSignal, log: (m: string) => void): Promise<void> {
  let said = false;
  for (;;) {
    if (signal.aborted) throw new Error(`stopped: ${String(signal.reason)}`);
    const holder = readLock(dir);
    if (!holder || holder.job !== lockJob || holder.host !== hostname() || !pidAlive(holder.pid) || pidStartedAfter(holder.pid, holder.started)) return;
    if (!said) log(`waiting for pid ${holder.pid}, an earlier attempt of this job on this host, to stop`);
    said = true;
    await new Promise((r) => setTimeout(r, 500));
  }
}
