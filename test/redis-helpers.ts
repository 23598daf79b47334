// A private redis-server for a test: on 127.0.0.1, a free port, no persistence, its files in a temporary
// folder; stopped (or killed, and started again on the same port) by the test. Tests that need one skip
// when Debian's redis-server is absent (`npm test` installs it when it runs as root with apt-get).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** The redis-server binary: $FLAG_TRADER_REDIS_SERVER, or the first on PATH; null when there is none. */
export function redisServerPath(): string | null {
  const env = process.env.FLAG_TRADER_REDIS_SERVER;
  if (env) return existsSync(env) ? env : null;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'redis-server'))) return join(dir, 'redis-server');
  }
  return null;
}

/** A skip reason for tests that need Redis (false when it is there). */
export function needsRedis(): string | false {
  return redisServerPath() ? false : 'redis-server is not installed and could not be installed (npm test installs Debian\'s redis-server when run as root with apt-get; or set FLAG_TRADER_REDIS_SERVER)';
}

/** A TCP port nobody listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ port, host: '127.0.0.1' });
    let got = '';
    const end = (ok: boolean) => { c.destroy(); resolve(ok); };
    c.setTimeout(500, () => end(false));
    c.once('error', () => end(false));
    c.on('connect', () => c.write('PING\r\n'));
    c.on('data', (d) => { got += d.toString(); if (got.includes('\r\n')) end(got.startsWith('+PONG')); });
  });
}

export class RedisServer {
  private proc: ChildProcess | null = null;
  private constructor(readonly port: number, readonly dir: string) {}

  get url(): string { return `redis://127.0.0.1:${this.port}`; }

  static async start(): Promise<RedisServer> {
    const r = new RedisServer(await freePort(), mkdtempSync(join(tmpdir(), 'redis-test-')));
    await r.launch();
    return r;
  }

  private async launch(): Promise<void> {
    const bin = redisServerPath();
    if (!bin) throw new Error('redis-server not found');
    this.proc = spawn(bin, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      if (await ping(this.port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not answer on port ${this.port}`);
  }

  /** Kill it (SIGKILL: a crash; without persistence every key is gone). */
  async kill(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => { p.once('exit', () => resolve()); p.kill('SIGKILL'); });
  }

  /** Kill it and start a new, empty one on the same port. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
