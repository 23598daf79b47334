// Hub downloads against a local server that answers the requests @huggingface/hub's downloadFile makes:
// GET {hub}/{org}/{name}/resolve/{revision}/{path}, first with "Range: bytes=0-0" (size and ETag from
// a 206 with Content-Range), then the full file; a missing file is a 404 with X-Error-Code EntryNotFound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, saveModelFolder } from '../src/model/load.js';
import { downloadModel, parseHubId, snapshotDir, SNAPSHOT_MANIFEST } from '../src/model/hub.js';
import { randomWeights } from '../src/model/random-init.js';
import { f16ToF32, f32ToF16 } from '../src/model/safetensors.js';
import { tmpDir, microConfig, writeMicroTokenizer } from './model-load-fixtures.js';
import type { LlamaWeights } from '../src/model/weights.js';

interface Repo { files: Map<string, Buffer>; token?: string; revisions: string[] }

class FakeHub {
  readonly repos = new Map<string, Repo>();
  readonly requests: string[] = [];
  /** Paths whose full download is cut short by this many bytes (a broken connection). */
  readonly shortBy = new Map<string, number>();
  private server: Server | null = null;
  url = '';

  /** Serve every file of a local folder as repo `id`. */
  addFolder(id: string, dir: string, opts: { token?: string; revisions?: string[] } = {}): void {
    const files = new Map<string, Buffer>();
    for (const f of readdirSync(dir)) files.set(f, readFileSync(join(dir, f)));
    this.repos.set(id, { files, revisions: opts.revisions ?? ['main'], ...(opts.token ? { token: opts.token } : {}) });
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.requests.push(`${req.method} ${req.url}`);
      const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(req.url ?? '');
      const fail = (status: number, code: string, msg: string) => {
        res.writeHead(status, { 'Content-Type': 'application/json', 'X-Error-Code': code });
        res.end(JSON.stringify({ error: msg }));
      };
      if (!m) return fail(404, 'RepoNotFound', 'Not found');
      const repo = this.repos.get(m[1]!);
      if (!repo) return fail(404, 'RepoNotFound', 'Repository not found');
      if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) return fail(401, 'GatedRepo', 'Invalid credentials');
      if (!repo.revisions.includes(decodeURIComponent(m[2]!))) return fail(404, 'RevisionNotFound', 'Invalid rev id');
      const path = decodeURIComponent(m[3]!);
      const body = repo.files.get(path);
      if (!body) return fail(404, 'EntryNotFound', `${path} does not exist`);
      const etag = `"${createHash('sha256').update(body).digest('hex')}"`;
      const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (range) {
        const a = Number(range[1]), b = Math.min(Number(range[2]), body.length - 1);
        res.writeHead(206, { 'Content-Range': `bytes ${a}-${b}/${body.length}`, ETag: etag, 'Content-Type': 'application/octet-stream' });
        res.end(body.subarray(a, b + 1));
        return;
      }
      const cut = this.shortBy.get(path) ?? 0;
      res.writeHead(200, { ETag: etag, 'Content-Type': 'application/octet-stream' });
      res.end(body.subarray(0, body.length - cut));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    const s = this.server;
    this.server = null;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** A small model folder to serve; returns its weights. */
function makeModel(dir: string, opts: { sharded?: boolean; tied?: boolean } = {}): LlamaWeights {
  const config = microConfig({ tie_word_embeddings: opts.tied ?? true });
  const w = randomWeights(config, 9);
  writeMicroTokenizer(dir);
  saveModelFolder(dir, config, w, { dtype: 'F16', ...(opts.sharded ? { maxShardBytes: 700 } : {}) });
  return w;
}

function flat(w: LlamaWeights): number[] {
  return [w.embed, ...w.layers.flatMap((l) => [l.inputNorm, l.q, l.k, l.v, l.o, l.postNorm, l.gate, l.up, l.down]), w.norm, ...(w.lmHead ? [w.lmHead] : [])]
    .flatMap((t) => Array.from(t));
}

test('hub ids parse as org/name with an optional @revision', () => {
  assert.deepEqual(parseHubId('HuggingFaceTB/SmolLM2-135M-Instruct'), { repo: 'HuggingFaceTB/SmolLM2-135M-Instruct' });
  assert.deepEqual(parseHubId('org/model.v2@refs/pr/1'), { repo: 'org/model.v2', revision: 'refs/pr/1' });
  for (const bad of ['gpt2', 'a/b/c', '../x', 'org/..', 'org/na me', 'org/x@', '/abs/path', 'org/a--b']) assert.equal(parseHubId(bad), null, bad);
});

test('download a single-file model, load it, then load again from the cache with the server stopped', async () => {
  const served = tmpDir('flag-hub-src-'), cache = tmpDir('flag-hub-cache-');
  const hub = new FakeHub();
  try {
    const w = makeModel(served);
    hub.addFolder('acme/micro-llama', served);
    await hub.start();
    const m = await loadModel('acme/micro-llama', { cacheDir: cache, hubUrl: hub.url });
    assert.equal(m.source, 'hub');
    assert.equal(m.spec, 'acme/micro-llama');
    assert.deepEqual(flat(m.weights), flat(w).map((x) => f16ToF32(f32ToF16(x))));
    assert.equal(m.fingerprint, (await loadModel(served)).fingerprint, 'same files, same fingerprint as the local folder');
    assert.ok(hub.requests.some((r) => r === 'GET /acme/micro-llama/resolve/main/model.safetensors'));
    assert.ok(hub.requests.some((r) => r.endsWith('/tokenizer_config.json')), 'optional file was asked for');
    const dir = snapshotDir(cache, hub.url, 'acme/micro-llama', 'main');
    assert.deepEqual(readdirSync(dir).sort(), [SNAPSHOT_MANIFEST, 'config.json', 'model.safetensors', 'tokenizer.json'].sort());
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) assert.deepEqual(readFileSync(join(dir, f)), readFileSync(join(served, f)));

    await hub.stop();
    const count = hub.requests.length;
    const again = await loadModel('acme/micro-llama', { cacheDir: cache, hubUrl: hub.url });
    assert.equal(hub.requests.length, count);
    assert.equal(again.fingerprint, m.fingerprint);
    const snap = await downloadModel('acme/micro-llama', { cacheDir: cache, hubUrl: hub.url });
    assert.equal(snap.fromCache, true);
  } finally {
    await hub.stop();
    rmSync(served, { recursive: true, force: true });
    rmSync(cache, { recursive: true, force: true });
  }
});

test('sharded model through HF_ENDPOINT, a revision in the spec, and HF_TOKEN for a private repo', async () => {
  const served = tmpDir('flag-hub-src-'), cache = tmpDir('flag-hub-cache-');
  const hub = new FakeHub();
  const saved = { endpoint: process.env.HF_ENDPOINT, token: process.env.HF_TOKEN };
  try {
    const w = makeModel(served, { sharded: true, tied: false });
    const shards = readdirSync(served).filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
    assert.ok(shards.length >= 3, `${shards.length} shards`);
    hub.addFolder('acme/sharded', served, { revisions: ['main', 'v1'] });
    hub.addFolder('acme/private', served, { token: 'hf_testtoken' });
    await hub.start();
    process.env.HF_ENDPOINT = hub.url;
    delete process.env.HF_TOKEN;
    const m = await loadModel('acme/sharded@v1', { cacheDir: cache });
    assert.deepEqual(flat(m.weights), flat(w).map((x) => f16ToF32(f32ToF16(x))));
    for (const s of shards) assert.ok(hub.requests.includes(`GET /acme/sharded/resolve/v1/${s}`), s);
    assert.ok(existsSync(join(snapshotDir(cache, hub.url, 'acme/sharded', 'v1'), 'model.safetensors.index.json')));

    await assert.rejects(loadModel('acme/private', { cacheDir: cache }), /Hub model "acme\/private" \(revision main\) at http:\/\/127\.0\.0\.1:\d+: cannot download config\.json: HTTP 401/);
    process.env.HF_TOKEN = 'hf_testtoken';
    const p = await loadModel('acme/private', { cacheDir: cache });
    assert.equal(p.fingerprint, m.fingerprint);
  } finally {
    if (saved.endpoint === undefined) delete process.env.HF_ENDPOINT; else process.env.HF_ENDPOINT = saved.endpoint;
    if (saved.token === undefined) delete process.env.HF_TOKEN; else process.env.HF_TOKEN = saved.token;
    await hub.stop();
    rmSync(served, { recursive: true, force: true });
    rmSync(cache, { recursive: true, force: true });
  }
});

test('hub errors: unknown id, unknown revision, no weights, unreachable server, cut-off download', async () => {
  const served = tmpDir('flag-hub-src-'), cache = tmpDir('flag-hub-cache-');
  const hub = new FakeHub();
  try {
    makeModel(served);
    hub.addFolder('acme/micro', served);
    const noWeights = new Map(hub.repos.get('acme/micro')!.files);
    noWeights.delete('model.safetensors');
    hub.repos.set('acme/empty', { files: noWeights, revisions: ['main'] });
    await hub.start();
    const base = hub.url.replace(/[.]/g, '\\.');
    await assert.rejects(loadModel('acme/nope', { cacheDir: cache, hubUrl: hub.url }),
      new RegExp(`Hub model "acme/nope" \\(revision main\\) at ${base}: cannot download config\\.json: HTTP 404: Repository not found`));
    await assert.rejects(loadModel('acme/micro@v9', { cacheDir: cache, hubUrl: hub.url }), /Hub model "acme\/micro" \(revision v9\).*HTTP 404: Invalid rev id/);
    await assert.rejects(loadModel('acme/empty', { cacheDir: cache, hubUrl: hub.url }), /Hub model "acme\/empty" \(revision main\) at .*: the repository has neither model\.safetensors nor model\.safetensors\.index\.json/);

    // A download that ends early leaves neither a partial file nor a snapshot manifest; a retry resumes.
    hub.shortBy.set('model.safetensors', 10);
    await assert.rejects(loadModel('acme/micro', { cacheDir: cache, hubUrl: hub.url }), /download of model\.safetensors failed: received \d+ of \d+ bytes/);
    const dir = snapshotDir(cache, hub.url, 'acme/micro', 'main');
    assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'tokenizer.json']);
    hub.shortBy.clear();
    const before = hub.requests.length;
    const m = await loadModel('acme/micro', { cacheDir: cache, hubUrl: hub.url });
    assert.equal(m.source, 'hub');
    assert.ok(!hub.requests.slice(before).some((r) => r.endsWith('/config.json')), 'config.json was not fetched again');

    // A port nobody listens on (a server opened and closed again, so no pooled connection to it).
    const gone = new FakeHub();
    await gone.start();
    const url = gone.url;
    await gone.stop();
    const goneBase = url.replace(/[.]/g, '\\.');
    await assert.rejects(loadModel('acme/other', { cacheDir: cache, hubUrl: url }), new RegExp(`Hub model "acme/other" \\(revision main\\) at ${goneBase}: cannot download config\\.json: fetch failed \\(ECONNREFUSED\\)`));
  } finally {
    await hub.stop();
    rmSync(served, { recursive: true, force: true });
    rmSync(cache, { recursive: true, force: true });
  }
});
