/**
 * The lock of a run directory: `train.lock`, held by the process that trains the run (a new run or a
 * resume) from before its first write to its end, so that two processes never write one run (their
 * metrics lines and checkpoints would interleave). It holds JSON: the holder's pid, host name, start
 * time, a random token and its command line.
 *
 * Taking it: the file is created with its content in one step (a hard link of a finished temporary
 * file, which fails when the lock exists). When it exists:
 *   - held by a process on this host that no longer exists (a kill, a crash): stale; it is taken over
 *     and the log says so;
 *   - held for the same queue job (`job`, set by the grid's queue workers, src/pipeline/queue-worker.ts)
 *     by a process on another host, or by a pid of this host that is now another process (it started
 *     after the lock was taken): stale too. The queue hands a job to one worker at a time, and only once
 *     its previous worker stopped renewing the job's lock in Redis (that worker stops its training when
 *     it cannot renew), so the previous holder is gone or has stopped;
 *   - otherwise (the process is alive, or on another host where that cannot be checked): an error
 *     naming the holder's pid, host and start time.
 * Released (deleted, if it still holds this holder's token) on normal exit and on error, and by an
 * 'exit' listener when the process exits from inside the run. A process killed by a signal leaves
 * the file behind; the next taker finds it stale.
 */
import { randomUUID } from 'node:crypto';
import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'train.lock';

export interface LockInfo {
  pid: number;
  host: string;
  /** ISO time the holder took the lock. */
  started: string;
  token: string;
  command: string;
  /** The queue job that holds the run (`<queue>/<job id>`), when a queue worker trains it. */
  job?: string;
}

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** Whether a process with this pid exists on this host (EPERM: it exists, owned by another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errCode(e) !== 'ESRCH';
  }
}

/**
 * Whether the process `pid` of this host provably started after `iso` (its start time from /proc, Linux
 * only): a pid recorded before that is now another process. False when it cannot be told.
 */
export function pidStartedAfter(pid: number, iso: string): boolean {
  const since = Date.parse(iso);
  if (!Number.isFinite(since)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (start time in clock ticks after boot) counts from after the command name's closing ')'.
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    if (!Number.isFinite(ticks) || !Number.isFinite(btime)) return false;
    // USER_HZ is 100 on Linux; a 2 s margin covers the rounding of btime.
    return btime * 1000 + ticks * 10 > since + 2000;
  } catch {
    return false;
  }
}

/** The lock of run directory `dir` as it is now: null when there is none or it is not a valid lock. */
export function readLock(dir: string): LockInfo | null {
  const raw = readText(join(dir, LOCK_FILE));
  return raw === null ? null : parseLock(raw);
}

function parseLock(text: string): LockInfo | null {
  try {
    const x = JSON.parse(text) as Partial<LockInfo>;
    if (x && Number.isSafeInteger(x.pid) && (x.pid as number) > 0 && typeof x.host === 'string' && typeof x.started === 'string' && typeof x.token === 'string') {
      return { command: '', ...x } as LockInfo;
    }
  } catch { /* below */ }
  return null;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (errCode(e) === 'ENOENT') return null;
    throw new Error(`${path}: cannot read the run's lock file: ${(e as Error).message}`);
  }
}

/** Create `path` holding `text`, atomically; false when it already exists. */
function tryCreate(path: string, text: string, token: string): boolean {
  const tmp = `${path}.${process.pid}.${token}.tmp`;
  writeFileSync(tmp, text);
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    if (errCode(e) === 'EEXIST') return false;
    // A file system without hard links: exclusive create (the content follows in the same call).
    try {
      writeFileSync(path, text, { flag: 'wx' });
      return true;
    } catch (e2) {
      if (errCode(e2) === 'EEXIST') return false;
      throw new Error(`${path}: cannot create the run's lock file: ${(e2 as Error).message}`);
    }
  } finally {
    try { unlinkSync(tmp); } catch { /* already gone */ }
  }
}

export class RunLock {
  private held = true;

  private constructor(readonly path: string, readonly info: LockInfo) {}

  /**
   * Take the lock of run directory `dir` (which must exist). `log` gets one line when a stale lock
   * is taken over. Throws, naming the holder, when another live process holds it. `job` names the
   * queue job this process trains the run for (a lock left by an earlier attempt of the same job is
   * taken over, see above).
   */
  static acquire(dir: string, log: (message: string) => void = () => {}, opts: { job?: string } = {}): RunLock {
    const path = join(dir, LOCK_FILE);
    const info: LockInfo = {
      pid: process.pid, host: hostname(), started: new Date().toISOString(), token: randomUUID(), command: process.argv.join(' '),
      ...(opts.job !== undefined && { job: opts.job }),
    };
    const text = JSON.stringify(info, null, 2) + '\n';
    for (let attempt = 0; attempt < 5; attempt++) {
      if (tryCreate(path, text, info.token)) return new RunLock(path, info);
      const raw = readText(path);
      if (raw === null) continue; // released meanwhile: try again
      const holder = parseLock(raw);
      if (!holder) {
        throw new Error(`${dir} may be in use: its lock file ${path} exists but is not a valid lock (expected JSON with pid, host, started, token); if no training of ${dir} is running, delete ${path}`);
      }
      const who = `pid ${holder.pid} on host ${holder.host}, started ${holder.started}${holder.command ? ` (${holder.command})` : ''}`;
      if (opts.job !== undefined && holder.job === opts.job && (holder.host !== info.host || !pidAlive(holder.pid) || pidStartedAfter(holder.pid, holder.started))) {
        if (readText(path) !== raw) continue;
        try { unlinkSync(path); } catch (e) { if (errCode(e) !== 'ENOENT') throw e; }
        log(`note: taking over the lock ${path} left by an earlier attempt of queue job ${opts.job}, which the queue has given to this worker since: ${who}`);
        continue;
      }
      if (holder.host !== info.host) {
        throw new Error(`${dir} is locked by another process: ${who}; it runs on another host, so whether it is still alive cannot be checked from here. Wait for it to finish; if it is gone, delete ${path}`);
      }
      if (pidAlive(holder.pid)) {
        throw new Error(`${dir} is being trained by another process: ${who}. Wait for it to finish (or stop it); if that pid is not a training of this run, delete ${path}`);
      }
      // Stale. Delete it only if it is still the same file (another process may have taken it over meanwhile).
      if (readText(path) !== raw) continue;
      try { unlinkSync(path); } catch (e) { if (errCode(e) !== 'ENOENT') throw e; }
      log(`note: taking over the stale lock ${path}: ${who} is no longer running on ${holder.host}`);
    }
    throw new Error(`${path}: could not take the run's lock (other processes keep taking it)`);
  }

  /** Delete the lock file if this holder still owns it. Safe to call more than once. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    const raw = readText(this.path);
    if (raw !== null && parseLock(raw)?.token === this.info.token) {
      try { unlinkSync(this.path); } catch { /* already gone */ }
    }
  }
}
