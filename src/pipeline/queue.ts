/**
 * The grid on a BullMQ queue (Redis): `reproduce --queue redis://HOST:PORT` enqueues every run of the
 * grid as a job and waits for `flag-trader worker` processes on any machines (src/pipeline/queue-worker.ts)
 * to train them; the evaluation and the report then run here, exactly as after a local run.
 * docs/queue.md is the user's guide.
 *
 * Jobs. One job per RunSpec; its jobId is the RunSpec id (e.g. `MSFT/llm-seed1`), so enqueueing again
 * never duplicates a run: BullMQ ignores an add with an id it holds, a finished job is not redone and a
 * failed one is retried (fresh attempts) when the grid is enqueued again. A job's data (QueueJobData)
 * is the RunSpec, the run root and where results go; its return value (QueueJobResult) is the run id,
 * how it went (trained / resumed / reused), the worker and the sha256 of each file of the run.
 *
 * The queue's name ties it to the run root: `flag-trader.<last folder of the root>.<12 hex digits>`,
 * the digits the start of sha256 of the root's absolute path (and of this host's name with
 * --queue-results redis, where the root exists on this machine only). Two grids with different roots
 * never share a queue; re-running one grid finds its queue again. Each enqueuer also registers its
 * queue in the Redis hash `flag-trader:queues` (name -> run root, results mode), which is where the
 * workers find the queues to serve.
 *
 * Results. `shared` (default): every worker writes the run under the run root it is given (the same
 * path on every machine: a shared mount); completion is read from the run folders. `redis`: a worker
 * trains in its own --work-dir and returns the run's files (base64) in the job's return value; the
 * enqueuer checks them against their sha256 and writes them under its run root, then removes the job.
 *
 * Faults. The enqueuer polls (every second): a run whose folder holds its final policy is done,
 * whatever Redis says, so a Redis restart that lost the queue loses no finished run: the missing jobs
 * are enqueued again (and the queue registered again), and the workers resume them from their
 * checkpoints. A job whose attempts all failed is reported with its error; the enqueuer waits for the
 * other runs, then fails naming every failed run.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Queue, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { LOCK_FILE } from '../rl/run-lock.js';
import { MANIFEST_FILE, readManifest } from '../rl/manifest.js';
import { codeVersion } from '../rl/provenance.js';
import { RUN_FILES } from '../rl/run.js';
import { writeFileAtomic } from '../util/atomic.js';
import { runDir, type RunSpec } from './run-spec.js';
import { checkRunIdentity, type TrainJobStatus } from './train-pool.js';

/** Where finished runs go: the shared run root, or back through Redis to the enqueuer's run root. */
export type QueueResults = 'shared' | 'redis';

export interface QueueOptions {
  /** redis://[user:password@]HOST[:PORT][/DB] (rediss:// for TLS). */
  url: string;
  /** Attempts per job before it is reported failed (default 3). */
  attempts?: number;
  /** First retry delay in ms, doubled at each further attempt (default 10000). */
  backoffMs?: number;
  /** Default 'shared'. */
  results?: QueueResults;
  /** Poll interval of the enqueuer in ms (default 1000). */
  pollMs?: number;
  /** How long a job completed by a worker may stay unfinished in the shared run root (file system delay), in ms (default 60000). */
  visibleWithinMs?: number;
}

/** The Redis hash where each enqueuer registers its queue: field = queue name, value = JSON QueueRegistration. */
export const QUEUE_REGISTRY = 'flag-trader:queues';

export interface QueueRegistration { runRoot: string; results: QueueResults; host: string; since: string }

export const JOB_FORMAT = 'flag-trader/queue-job';

export interface QueueJobData {
  format: typeof JOB_FORMAT;
  version: 1;
  /** The run root as the enqueuer sees it (absolute). */
  runRoot: string;
  results: QueueResults;
  spec: RunSpec;
  /** The enqueuer's code (src/ sha256, git commit): a worker on other code says so in its result. */
  code: { src_sha256: string; git_commit: string | null };
}

export interface QueueJobResult {
  id: string;
  status: TrainJobStatus;
  /** `<host>:<pid>` of the worker. */
  worker: string;
  seconds: number;
  /** sha256 of every file in the run's manifest.json (and of manifest.json itself). */
  manifest: Record<string, string>;
  /** Set when the worker's code differs from the enqueuer's. */
  codeDiffers?: string;
  /** With results 'redis': every file of the run folder, base64. */
  files?: Record<string, string>;
}

/** A queue URL, checked: redis:// or rediss:// with a host. Errors name the URL and the expected form. */
export function parseRedisUrl(url: string): string {
  let u: URL;
  try { u = new URL(url); } catch { throw new Error(`--queue: ${JSON.stringify(url)} is not a URL; expected redis://HOST:PORT`); }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`--queue: ${JSON.stringify(url)}: expected redis://HOST:PORT (or rediss:// for TLS), not ${u.protocol}//`);
  if (u.hostname === '') throw new Error(`--queue: ${JSON.stringify(url)}: no host; expected redis://HOST:PORT`);
  if (u.pathname !== '' && u.pathname !== '/' && !/^\/\d+$/.test(u.pathname)) throw new Error(`--queue: ${JSON.stringify(url)}: the path can only be a database number (redis://HOST:PORT/DB)`);
  return url;
}

/** The URL without its password, for messages. */
export function showUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch { return url; }
}

/** A plain Redis client for the queue registry; one that fails fast (no endless reconnects) when `fast`. */
export function redisClient(url: string, fast = false): Redis {
  const client = new Redis(url, fast
    ? { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null }
    : { lazyConnect: true, maxRetriesPerRequest: 2 });
  client.on('error', () => { /* reported by the commands that fail */ });
  return client;
}

/** Connect to Redis at `url` and ping it, or fail within `timeoutMs` with an error naming the URL. */
export async function checkRedis(url: string, timeoutMs = 5000): Promise<void> {
  const client = redisClient(url, true);
  let cause: Error | null = null; // the socket's error (ECONNREFUSED, ENOTFOUND...) says more than the command's
  client.on('error', (e: Error) => { cause ??= e; });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => { await client.connect(); await client.ping(); })(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs); }),
    ]);
  } catch (e) {
    const why = (cause as Error | null)?.message || (e as Error).message || String(e);
    throw new Error(`cannot reach Redis at ${showUrl(url)}: ${why}`);
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}

/** BullMQ connection options for `url` (blocking connections need maxRetriesPerRequest null). */
export function connectionOf(url: string): { url: string; maxRetriesPerRequest: null } {
  return { url, maxRetriesPerRequest: null };
}

/** The queue of the grid whose run root is `runRoot` (see the header for the rule). */
export function queueNameFor(runRoot: string, results: QueueResults = 'shared'): string {
  const root = resolve(runRoot);
  const key = results === 'shared' ? root : `${hostname()}:${root}`;
  const leaf = (basename(root).replace(/[^A-Za-z0-9_-]/g, '_') || 'root').slice(0, 40);
  return `flag-trader.${leaf}.${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}

/** The queue job key recorded in a run's train.lock while a queue worker trains it. */
export function lockJobOf(queueName: string, jobId: string): string {
  return `${queueName}/${jobId}`;
}

/** Whether the run folder holds a finished run (its final policy, and metrics.jsonl listed in its manifest). */
export function runFinished(dir: string): boolean {
  if (!existsSync(join(dir, RUN_FILES.policy))) return false;
  try {
    const m = readManifest(dir);
    return m === null || m.files[RUN_FILES.metrics] !== undefined;
  } catch {
    return false;
  }
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** sha256 of each file a run's manifest lists, and of manifest.json itself. */
export function manifestHashes(dir: string): Record<string, string> {
  const m = readManifest(dir);
  const out: Record<string, string> = {};
  for (const [name, e] of Object.entries(m?.files ?? {})) out[name] = e.sha256;
  if (m) out[MANIFEST_FILE] = sha256(readFileSync(join(dir, MANIFEST_FILE)));
  return out;
}

/** Every file of a run folder (not its lock or temporary files), base64: what a worker returns with results 'redis'. */
export function readRunFiles(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    if (name === LOCK_FILE || name.startsWith('.') || !statSync(join(dir, name)).isFile()) continue;
    out[name] = readFileSync(join(dir, name)).toString('base64');
  }
  return out;
}

/**
 * Write the files a worker returned into run folder `dir`, each checked against the sha256 the worker
 * reported (manifest.json last, so that a stop half-way leaves no manifest claiming files not written).
 */
export function writeReturnedRun(dir: string, result: QueueJobResult): void {
  if (!result.files) throw new Error(`${result.id}: the worker returned no files (was the job run with --queue-results shared?)`);
  const files = Object.entries(result.files).map(([name, b64]) => {
    if (name.includes('/') || name.includes('\\') || name.startsWith('.')) throw new Error(`${result.id}: the worker returned a file with a bad name ${JSON.stringify(name)}`);
    const bytes = Buffer.from(b64, 'base64');
    const want = result.manifest[name];
    if (want !== undefined && sha256(bytes) !== want) throw new Error(`${result.id}: ${name} as received has sha256 ${sha256(bytes)}, the worker reported ${want}`);
    return { name, bytes };
  });
  for (const name of Object.keys(result.manifest)) {
    if (!(name in result.files)) throw new Error(`${result.id}: the worker's manifest lists ${name}, which it did not return`);
  }
  mkdirSync(dir, { recursive: true });
  for (const f of files.filter((f) => f.name !== MANIFEST_FILE)) writeFileAtomic(join(dir, f.name), f.bytes);
  for (const f of files.filter((f) => f.name === MANIFEST_FILE)) writeFileAtomic(join(dir, f.name), f.bytes);
  // A lock left by an earlier local training of this folder is not ours to keep.
  if (existsSync(join(dir, LOCK_FILE))) { try { unlinkSync(join(dir, LOCK_FILE)); } catch { /* gone */ } }
}

/** The job data of a run of the grid rooted at `runRoot`. */
export function jobDataOf(spec: RunSpec, runRoot: string, results: QueueResults): QueueJobData {
  const code = codeVersion();
  return { format: JOB_FORMAT, version: 1, runRoot: resolve(runRoot), results, spec, code: { src_sha256: code.src_sha256, git_commit: code.git_commit } };
}

/** Whether a queued job describes the same run as `data` (its code version aside). */
function sameJob(a: QueueJobData, b: QueueJobData): boolean {
  const key = (d: QueueJobData) => JSON.stringify([d.format, d.version, d.runRoot, d.results, d.spec]);
  return key(a) === key(b);
}

export interface EnqueueSummary {
  queue: string;
  /** Runs whose folder already held a finished run: not enqueued. */
  finished: string[];
  /** Jobs added (new, or replacing a job of other settings, or one Redis had lost). */
  added: string[];
  /** Jobs already in the queue for the same run, waiting, running or completed: left alone. */
  present: string[];
  /** Failed jobs moved back to waiting with fresh attempts. */
  retried: string[];
}

/** A grid's queue: the BullMQ queue, the registry client, the settings. Close it when done. */
export class GridQueue {
  readonly name: string;
  readonly queue: Queue;
  readonly registry: Redis;
  readonly results: QueueResults;
  readonly attempts: number;
  readonly backoffMs: number;
  private errors: (e: Error) => void = () => {};

  constructor(readonly url: string, readonly runRoot: string, opts: Omit<QueueOptions, 'url'> = {}) {
    this.runRoot = resolve(runRoot);
    this.results = opts.results ?? 'shared';
    this.attempts = opts.attempts ?? 3;
    this.backoffMs = opts.backoffMs ?? 10_000;
    if (!Number.isInteger(this.attempts) || this.attempts < 1) throw new Error(`--attempts must be a positive integer, got ${this.attempts}`);
    this.name = queueNameFor(this.runRoot, this.results);
    this.queue = new Queue(this.name, { connection: { url, maxRetriesPerRequest: 2 } });
    this.queue.on('error', (e: Error) => this.errors(e));
    this.registry = redisClient(url);
  }

  /** Where connection errors go (default: dropped; the polls report what fails). */
  onError(fn: (e: Error) => void): void { this.errors = fn; }

  /** Register the queue in flag-trader:queues (again, after a Redis restart). */
  async register(): Promise<void> {
    const reg: QueueRegistration = { runRoot: this.runRoot, results: this.results, host: hostname(), since: new Date().toISOString() };
    await this.registry.hset(QUEUE_REGISTRY, this.name, JSON.stringify(reg));
  }

  async unregister(): Promise<void> {
    await this.registry.hdel(QUEUE_REGISTRY, this.name);
  }

  /** Add the job of `spec`, unless the queue holds it already (see EnqueueSummary). */
  async add(spec: RunSpec): Promise<'added' | 'present' | 'retried'> {
    const data = jobDataOf(spec, this.runRoot, this.results);
    const job = (await this.queue.getJob(spec.id)) as Job<QueueJobData, QueueJobResult> | undefined;
    if (job) {
      const state = await job.getState();
      const same = job.data && sameJob(job.data, data);
      if (same && state === 'failed') {
        await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        return 'retried';
      }
      // A completed job whose results are not in the run root (removed since) is run again.
      const lost = state === 'completed' && this.results === 'shared' && !runFinished(runDir(this.runRoot, spec.id));
      if (same && !lost && state !== 'unknown') return 'present';
      if (state === 'active') throw new Error(`${spec.id}: a worker is training this run from other settings (job ${spec.id} in queue ${this.name}); wait for it or remove the job`);
      if (state !== 'unknown') await job.remove();
    }
    await this.queue.add('train', data, {
      jobId: spec.id, attempts: this.attempts, backoff: { type: 'exponential', delay: this.backoffMs },
      removeOnComplete: false, removeOnFail: false,
    });
    return 'added';
  }

  /** Enqueue every run of a grid whose folder does not hold a finished run. */
  async enqueue(specs: RunSpec[]): Promise<EnqueueSummary> {
    mkdirSync(this.runRoot, { recursive: true });
    await this.register();
    const s: EnqueueSummary = { queue: this.name, finished: [], added: [], present: [], retried: [] };
    // The LLM runs, the longest, first (BullMQ hands out waiting jobs in the order they were added).
    for (const spec of [...specs.filter((x) => x.config.policy === 'llm'), ...specs.filter((x) => x.config.policy !== 'llm')]) {
      const dir = runDir(this.runRoot, spec.id);
      if (runFinished(dir)) { s.finished.push(spec.id); continue; }
      // The workers never see this folder with results 'redis': a run of other settings in it is refused here.
      if (this.results === 'redis') checkRunIdentity({ dir, config: spec.config, label: spec.id });
      s[await this.add(spec)].push(spec.id);
    }
    return s;
  }

  async close(): Promise<void> {
    await this.queue.close().catch(() => {});
    this.registry.disconnect();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Enqueue the runs of a grid and wait until each is finished in the run root or has failed all its
 * attempts, logging a line per job state change (and the training progress every 10 updates).
 * Throws, naming every failed run and its error, when any failed.
 */
export async function trainOnQueue(specs: RunSpec[], runRoot: string, opts: QueueOptions, log: (m: string) => void = () => {}): Promise<void> {
  const url = parseRedisUrl(opts.url);
  await checkRedis(url);
  const q = new GridQueue(url, runRoot, opts);
  const pollMs = opts.pollMs ?? 1000;
  const visibleWithin = opts.visibleWithinMs ?? 60_000;
  try {
    const s = await q.enqueue(specs);
    log(`queue ${q.name} on ${showUrl(url)} (run root ${q.runRoot}, results ${q.results}): ${specs.length} runs; `
      + `${s.finished.length} already finished, ${s.added.length} enqueued, ${s.present.length} already in the queue, ${s.retried.length} failed before and enqueued again`);
    const pending = new Map(specs.filter((sp) => !s.finished.includes(sp.id)).map((sp) => [sp.id, sp] as const));
    if (pending.size > 0) log(`waiting for workers: flag-trader worker --queue ${showUrl(url)}`);
    const shown = new Map<string, string>();
    const completedAt = new Map<string, number>();
    const attemptsSeen = new Map<string, number>();
    const failures = new Map<string, string>();
    let done = specs.length - pending.size;
    const show = (id: string, text: string) => {
      if (shown.get(id) === text) return;
      shown.set(id, text);
      log(`[${done}/${specs.length}] ${id}: ${text}`);
    };
    const finish = (id: string, text: string) => { pending.delete(id); done++; show(id, text); };
    let lastError = 0;
    while (pending.size > 0) {
      try {
        await q.register();
        for (const [id, spec] of [...pending]) {
          const dir = runDir(q.runRoot, id);
          const job = (await q.queue.getJob(id)) as Job<QueueJobData, QueueJobResult> | undefined;
          const state = job ? await job.getState() : 'unknown';
          if (!job || state === 'unknown') {
            if (runFinished(dir)) { finish(id, 'finished (found in the run root)'); continue; }
            await q.add(spec);
            show(id, 'not in the queue (Redis restarted or the job was removed): enqueued again');
            continue;
          }
          const attempt = `attempt ${Math.min(job.attemptsMade + 1, q.attempts)} of ${q.attempts}`;
          // An attempt failed since the last poll (the job may be waiting or training again already).
          if (job.attemptsMade > (attemptsSeen.get(id) ?? 0) && job.failedReason && ['waiting', 'delayed', 'active', 'prioritized'].includes(state)) {
            show(id, `attempt ${job.attemptsMade} failed: ${job.failedReason}; retrying`);
          }
          attemptsSeen.set(id, job.attemptsMade);
          if (state === 'completed') {
            const r = job.returnvalue;
            const how = `${r.status} on ${r.worker} in ${r.seconds.toFixed(0)} s${r.codeDiffers ? `; note: ${r.codeDiffers}` : ''}`;
            if (q.results === 'redis') {
              try {
                writeReturnedRun(dir, r);
              } catch (e) {
                failures.set(id, `the job completed on ${r.worker}, but its files could not be written here: ${(e as Error).message}`);
                finish(id, `failed: ${failures.get(id)}`);
                continue;
              }
              await job.remove();
              finish(id, `completed (${how}); files written to ${dir}`);
            } else if (runFinished(dir)) {
              finish(id, `completed (${how})`);
            } else {
              const t = completedAt.get(id) ?? Date.now();
              completedAt.set(id, t);
              if (Date.now() - t > visibleWithin) {
                failures.set(id, `the job completed on ${r.worker}, but ${dir} holds no finished run here: is ${q.runRoot} the same shared folder, at the same path, on every worker? (or use --queue-results redis)`);
                finish(id, `failed: ${failures.get(id)}`);
              } else show(id, `completed (${how}); waiting for its files to show in ${dir}`);
            }
          } else if (state === 'failed') {
            failures.set(id, `${job.failedReason} (after ${job.attemptsMade} attempt${job.attemptsMade === 1 ? '' : 's'})`);
            finish(id, `failed after ${job.attemptsMade} attempt${job.attemptsMade === 1 ? '' : 's'}: ${job.failedReason}`);
          } else if (state === 'active') {
            const p = job.progress as { update?: number; updates?: number } | number;
            const tens = typeof p === 'object' && p.update !== undefined ? Math.floor(p.update / 10) * 10 : 0;
            show(id, `training on ${job.processedBy ?? 'a worker'} (${attempt})${tens > 0 && typeof p === 'object' ? `: update ${tens} of ${p.updates}` : ''}`);
          } else if (state === 'delayed') {
            show(id, job.attemptsMade > 0 ? `attempt ${job.attemptsMade} failed: ${job.failedReason}; retrying` : 'delayed');
          } else {
            show(id, job.attemptsMade > 0 ? `waiting (${attempt})` : 'waiting');
          }
        }
      } catch (e) {
        if (Date.now() - lastError > 30_000) log(`queue: ${(e as Error).message} (Redis at ${showUrl(url)}); still trying`);
        lastError = Date.now();
      }
      if (pending.size > 0) await sleep(pollMs);
    }
    await q.unregister().catch(() => {});
    if (failures.size > 0) {
      throw new Error(`${failures.size} of ${specs.length} runs failed on queue ${q.name}: ${[...failures].map(([id, why]) => `${id}: ${why}`).join('; ')}`);
    }
  } finally {
    await q.close();
  }
}
