/**
 * An OpenAI-compatible HTTP server over an ActionScorer (node:http, no framework).
 *
 *   GET  /health                status, model id, requests in flight (no auth: for load balancers)
 *   GET  /v1/models             the scorer id as the one model
 *   GET  /v1/models/{id}
 *   POST /v1/chat/completions   OpenAI request shape; the reply is an assistant message whose content
 *                               is JSON {"action": "..."}, plus top-level `action_probabilities`
 *   POST /v1/act                {observation} -> {model, action, probabilities}
 *
 * Action choice: `temperature` absent, null or 0 -> greedy (argmax, ties to buy, sell, hold order);
 * temperature > 0 -> a sample from the tempered probabilities with an Rng seeded by the request's
 * `seed`, or, without one, from the server's own stream (seeded by ServeOptions.seed; then the draw
 * depends on the order requests arrive). Note OpenAI's default temperature is 1; here it is greedy.
 *
 * Chat requests are scored from the messages when the scorer can read a prompt (scorePrompt);
 * otherwise (rule baselines) the request must carry the day's Observation in an `observation` field,
 * a flag-trader extension.
 *
 * Every failure is an OpenAI-shaped error {error: {message, type, param, code}}: 400 bad JSON or
 * fields, or a prompt the model cannot take (code context_length_exceeded: over maxPromptChars, over
 * the model's context, or an observation whose rendered prompt does not fit the scorer's budget even
 * with its news cut; see policy-scorer.ts), 401 missing/wrong bearer token, 404 unknown path or model,
 * 405 wrong method, 413 body over maxBodyBytes, 500 scorer failure. Nothing a client sends can crash
 * the process.
 *
 * close(): stop accepting connections, let requests in flight finish (their responses carry
 * Connection: close), close idle keep-alive connections, force the rest after shutdownGraceMs.
 *
 * Slow or idle clients cannot hold sockets for long (node's own default lets a request take 300 s):
 * a client must send its request headers within headersTimeoutMs (else 408 and close) and the whole
 * request within requestTimeoutMs, an idle keep-alive connection is closed after keepAliveTimeoutMs,
 * and connections beyond maxConnections are closed at once.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Rng } from '../util/rng.js';
import { HttpError, fromZodError } from './http-errors.js';
import { actRequestSchema, chatRequestSchema, type ChatRequest } from './schemas.js';
import { checkProbabilities, greedyAction, sampleAction, type ActionProbabilities, type ActionScorer } from './scorer.js';
import type { Action, Observation } from '../env/types.js';

export interface ServeOptions {
  scorer: ActionScorer;
  /** Interface to bind (default 127.0.0.1: local only). */
  host?: string;
  /** Port (default 0: any free port; see url after listen()). */
  port?: number;
  /** Bearer token required on /v1/* (default none). */
  apiKey?: string | null;
  /** Largest request body in bytes (default 1 MiB); larger -> 413. */
  maxBodyBytes?: number;
  /**
   * Largest prompt, in characters of all message contents (default 200000); larger chat requests -> 400.
   * Prompts a scorer renders for /v1/act are its own to limit (give it the same number: src/cli/serve.ts).
   */
  maxPromptChars?: number;
  /** Seed of the sampling stream for requests with temperature > 0 and no seed (default 0). */
  seed?: number;
  /** How long close() waits for requests in flight before cutting connections (default 10000 ms). */
  shutdownGraceMs?: number;
  /** The request headers must arrive within this many ms of the request's start (default 20000); else 408 and close. */
  headersTimeoutMs?: number;
  /** The whole request (headers and body) must arrive within this many ms (default 60000; at least headersTimeoutMs). */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this many ms (default 5000). */
  keepAliveTimeoutMs?: number;
  /** Most open connections; further ones are closed at once (default 256). */
  maxConnections?: number;
  /** Called after each request (for a request log). */
  onRequest?: (rec: { method: string; path: string; status: number; ms: number }) => void;
}

export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  maxBodyBytes: 1024 * 1024,
  maxPromptChars: 200_000,
  seed: 0,
  shutdownGraceMs: 10_000,
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 256,
} as const;

/** The CLI flag of each limit, for error messages. */
const LIMIT_FLAGS = {
  headersTimeoutMs: '--headers-timeout-ms', requestTimeoutMs: '--request-timeout-ms', keepAliveTimeoutMs: '--keep-alive-timeout-ms', maxConnections: '--max-connections',
} as const;

/** The connection limits as the node server holds them (see PolicyServer.limits). */
export interface ConnectionLimits { headersTimeoutMs: number; requestTimeoutMs: number; keepAliveTimeoutMs: number; maxConnections: number }

interface Reply { status: number; body: unknown; headers?: Record<string, string> }

export class PolicyServer {
  readonly stats = { requests: 0, inFlight: 0, clientErrors: 0, serverErrors: 0 };
  private readonly server: Server;
  private readonly rng: Rng;
  private readonly o: Required<Omit<ServeOptions, 'apiKey' | 'onRequest'>> & Pick<ServeOptions, 'onRequest'>;
  private readonly keyDigest: Buffer | null;
  private readonly startedAt = Math.floor(Date.now() / 1000);
  private completionCount = 0;
  private closing = false;
  private closed: Promise<void> | null = null;
  private baseUrl: string | null = null;

  constructor(options: ServeOptions) {
    this.o = { ...SERVE_DEFAULTS, ...stripUndefined(options) } as PolicyServer['o'];
    checkServeOptions(this.o);
    this.keyDigest = options.apiKey ? sha256(options.apiKey) : null;
    this.rng = new Rng(this.o.seed);
    const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs, maxConnections } = this.o;
    this.server = createServer({
      headersTimeout: headersTimeoutMs,
      requestTimeout: requestTimeoutMs,
      keepAliveTimeout: keepAliveTimeoutMs,
      // How often node looks for connections past headersTimeout/requestTimeout (its default, 30 s,
      // would let a slow client stay up to 30 s past the limit): a quarter of the shorter limit, 10 ms to 1 s.
      connectionsCheckingInterval: Math.min(1000, Math.max(10, Math.floor(Math.min(headersTimeoutMs, requestTimeoutMs) / 4))),
    }, (req, res) => { void this.handle(req, res); });
    this.server.keepAliveTimeout = keepAliveTimeoutMs;
    this.server.maxConnections = maxConnections;
    // Malformed HTTP (not a request we can answer in JSON): a plain 400 and close, as node does by
    // default; a request whose headers or body came too slowly: 408 and close.
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      else socket.destroy();
    });
  }

  get scorer(): ActionScorer { return this.o.scorer; }

  /** The connection limits in force, read back from the node server. */
  get limits(): ConnectionLimits {
    const s = this.server;
    return { headersTimeoutMs: s.headersTimeout, requestTimeoutMs: s.requestTimeout, keepAliveTimeoutMs: s.keepAliveTimeout, maxConnections: s.maxConnections };
  }

  /** Base URL (http://host:port) once listening. */
  get url(): string {
    if (!this.baseUrl) throw new Error('PolicyServer: not listening yet');
    return this.baseUrl;
  }

  listen(): Promise<string> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new Error(`cannot listen on ${this.o.host}:${this.o.port}: ${err.code ?? ''} ${err.message}`.trim()));
      };
      this.server.once('error', onError);
      this.server.listen(this.o.port, this.o.host, () => {
        this.server.off('error', onError);
        const addr = this.server.address() as AddressInfo;
        const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
        this.baseUrl = `http://${host}:${addr.port}`;
        resolve(this.baseUrl);
      });
    });
  }

  /** Stop accepting, finish requests in flight, then resolve. Safe to call more than once. */
  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.closing = true;
    this.closed = new Promise<void>((resolve) => {
      const force = setTimeout(() => this.server.closeAllConnections(), this.o.shutdownGraceMs);
      force.unref();
      this.server.close(() => { clearTimeout(force); resolve(); });
      this.server.closeIdleConnections();
    });
    return this.closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    this.stats.requests++;
    this.stats.inFlight++;
    const method = req.method ?? '';
    const path = (req.url ?? '').split('?')[0] ?? '';
    let reply: Reply;
    try {
      reply = await this.route(method, path, req);
    } catch (err) {
      const e = err instanceof HttpError ? err
        : new HttpError(500, `internal error: ${err instanceof Error ? err.message : String(err)}`, 'server_error');
      reply = { status: e.status, body: e.body(), headers: e.headers };
    }
    if (reply.status >= 500) this.stats.serverErrors++;
    else if (reply.status >= 400) this.stats.clientErrors++;
    try {
      this.send(res, reply);
    } catch {
      // The client went away mid-response: nothing left to tell it.
    }
    this.stats.inFlight--;
    if (this.closing) res.once('finish', () => this.server.closeIdleConnections());
    try {
      this.o.onRequest?.({ method, path, status: reply.status, ms: performance.now() - t0 });
    } catch {
      // A failing request logger must not take the server down.
    }
  }

  private send(res: ServerResponse, reply: Reply): void {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(reply.body);
    res.statusCode = reply.status;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(text));
    for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
    if (this.closing) res.setHeader('Connection', 'close');
    res.end(text);
  }

  private async route(method: string, path: string, req: IncomingMessage): Promise<Reply> {
    if (path === '/health') {
      allow(method, ['GET', 'HEAD'], path);
      return { status: 200, body: { status: this.closing ? 'closing' : 'ok', model: this.o.scorer.id, inFlight: this.stats.inFlight } };
    }
    const routes: Record<string, string[]> = { '/v1/models': ['GET'], '/v1/chat/completions': ['POST'], '/v1/act': ['POST'] };
    const modelPath = /^\/v1\/models\/(.+)$/.exec(path);
    const allowed = routes[path] ?? (modelPath ? ['GET'] : undefined);
    if (!allowed) throw new HttpError(404, `Unknown path ${JSON.stringify(path)}; this server has GET /health, GET /v1/models, POST /v1/chat/completions, POST /v1/act`, 'not_found_error', null, 'unknown_url');
    allow(method, allowed, path);
    this.authorize(req);

    if (path === '/v1/models') return { status: 200, body: { object: 'list', data: [this.modelCard()] } };
    if (modelPath) {
      const id = decodeURIComponent(modelPath[1]!);
      if (id !== this.o.scorer.id) throw this.unknownModel(id);
      return { status: 200, body: this.modelCard() };
    }
    const body = await this.readJson(req);
    if (path === '/v1/chat/completions') return this.chat(body);
    return this.act(body);
  }

  private authorize(req: IncomingMessage): void {
    if (!this.keyDigest) return;
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    // Compare digests (equal length) in constant time, so the key cannot be guessed byte by byte from timing.
    if (!m || !timingSafeEqual(sha256(m[1]!), this.keyDigest)) {
      throw new HttpError(401, m ? 'Incorrect API key provided.' : 'Missing bearer token: send the header "Authorization: Bearer <key>".',
        'authentication_error', null, 'invalid_api_key', { 'WWW-Authenticate': 'Bearer' });
    }
  }

  private modelCard(): Record<string, unknown> {
    return { id: this.o.scorer.id, object: 'model', created: this.startedAt, owned_by: 'flag-trader' };
  }

  private unknownModel(id: string): HttpError {
    return new HttpError(404, `The model ${JSON.stringify(id)} does not exist; this server serves ${JSON.stringify(this.o.scorer.id)} (GET /v1/models)`,
      'not_found_error', 'model', 'model_not_found');
  }

  private async readJson(req: IncomingMessage): Promise<unknown> {
    const raw = await readBody(req, this.o.maxBodyBytes);
    if (raw.length === 0) throw new HttpError(400, 'Request body is empty; expected a JSON object', 'invalid_request_error', null, 'invalid_json');
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      throw new HttpError(400, 'Request body is not valid UTF-8; expected a JSON object', 'invalid_request_error', null, 'invalid_json');
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new HttpError(400, `Request body is not valid JSON (${(err as Error).message}); expected a JSON object`, 'invalid_request_error', null, 'invalid_json');
    }
  }

  private async chat(body: unknown): Promise<Reply> {
    const r = chatRequestSchema.safeParse(body);
    if (!r.success) throw fromZodError(r.error, 'chat completion request');
    const q: ChatRequest = r.data;
    if (q.stream === true) throw new HttpError(400, 'stream: true is not supported by this server; send stream: false or leave it out', 'invalid_request_error', 'stream', 'unsupported_value');
    if (q.n != null && q.n !== 1) throw new HttpError(400, `n=${q.n} is not supported; this server returns one choice (n=1)`, 'invalid_request_error', 'n', 'unsupported_value');
    if (q.model !== this.o.scorer.id) throw this.unknownModel(q.model);
    let chars = 0;
    for (const m of q.messages) chars += m.content.length;
    if (chars > this.o.maxPromptChars) {
      throw new HttpError(400, `The prompt has ${chars} characters, more than this server's limit of ${this.o.maxPromptChars}`,
        'invalid_request_error', 'messages', 'context_length_exceeded');
    }
    const scorer = this.o.scorer;
    let probs: ActionProbabilities;
    if (scorer.scorePrompt) {
      probs = await this.score(() => scorer.scorePrompt!(q.messages));
    } else if (q.observation) {
      const obs = q.observation as Observation;
      probs = await this.score(() => scorer.scoreObservation(obs));
    } else {
      throw new HttpError(400, `Model ${JSON.stringify(scorer.id)} is a rule baseline that cannot read a prompt: send the day's observation in an "observation" field (flag-trader extension) or use POST /v1/act`,
        'invalid_request_error', 'observation', 'missing_observation');
    }
    const action = this.choose(probs, q.temperature, q.seed);
    return {
      status: 200,
      body: {
        id: `chatcmpl-flag-${++this.completionCount}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: scorer.id,
        choices: [{ index: 0, message: { role: 'assistant', content: JSON.stringify({ action }), refusal: null }, logprobs: null, finish_reason: 'stop' }],
        action_probabilities: probs,
      },
    };
  }

  private async act(body: unknown): Promise<Reply> {
    const r = actRequestSchema.safeParse(body);
    if (!r.success) throw fromZodError(r.error, '/v1/act request');
    const obs = r.data.observation as Observation;
    const probs = await this.score(() => this.o.scorer.scoreObservation(obs));
    const action = this.choose(probs, r.data.temperature, r.data.seed);
    return { status: 200, body: { model: this.o.scorer.id, action, probabilities: probs } };
  }

  /** Run the scorer; a throw or malformed output is a 500 naming the scorer, never a crash. */
  private async score(fn: () => Promise<ActionProbabilities> | ActionProbabilities): Promise<ActionProbabilities> {
    let out: unknown;
    try {
      out = await fn();
    } catch (err) {
      // A scorer that rejects its input (a prompt the model cannot take) says so with an HttpError 4xx.
      if (err instanceof HttpError) throw err;
      throw new HttpError(500, `scorer ${JSON.stringify(this.o.scorer.id)} failed: ${err instanceof Error ? err.message : String(err)}`, 'server_error');
    }
    try {
      return checkProbabilities(out);
    } catch (err) {
      throw new HttpError(500, `scorer ${JSON.stringify(this.o.scorer.id)} returned invalid probabilities: ${(err as Error).message}`, 'server_error');
    }
  }

  private choose(p: ActionProbabilities, temperature: number | null | undefined, seed: number | null | undefined): Action {
    if (!temperature) return greedyAction(p);
    return sampleAction(p, temperature, seed == null ? this.rng : new Rng(seed));
  }
}

/** Read the body up to `limit` bytes; over it -> 413 (the rest is drained and dropped). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = (): HttpError => new HttpError(413, `Request body is larger than this server's limit of ${limit} bytes`, 'invalid_request_error', null, 'request_too_large', { Connection: 'close' });
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (f: () => void): void => { if (!settled) { settled = true; f(); } };
    req.on('data', (c: Buffer) => {
      if (settled) return;
      size += c.length;
      if (size > limit) { chunks.length = 0; settle(() => reject(tooLarge())); return; }
      chunks.push(c);
    });
    req.on('end', () => settle(() => resolve(Buffer.concat(chunks))));
    req.on('error', (err) => settle(() => reject(new HttpError(400, `error reading the request body: ${err.message}`))));
    req.on('close', () => settle(() => reject(new HttpError(400, 'the request body ended early (connection closed)'))));
  });
}

function allow(method: string, methods: string[], path: string): void {
  if (!methods.includes(method)) {
    throw new HttpError(405, `Method ${method} is not allowed on ${path}; use ${methods.join(' or ')}`, 'invalid_request_error', null, 'method_not_allowed', { Allow: methods.join(', ') });
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkServeOptions(o: { port: number; maxBodyBytes: number; maxPromptChars: number; seed: number; shutdownGraceMs: number; host: string } & ConnectionLimits): void {
  const need = (ok: boolean, what: string, got: unknown): void => {
    if (!ok) throw new Error(`serve option ${what}, got ${JSON.stringify(got)}`);
  };
  need(Number.isInteger(o.port) && o.port >= 0 && o.port <= 65535, 'port must be an integer in [0, 65535]', o.port);
  need(Number.isInteger(o.maxBodyBytes) && o.maxBodyBytes >= 1, 'maxBodyBytes must be a positive integer', o.maxBodyBytes);
  need(Number.isInteger(o.maxPromptChars) && o.maxPromptChars >= 1, 'maxPromptChars must be a positive integer', o.maxPromptChars);
  need(Number.isFinite(o.seed), 'seed must be a finite number', o.seed);
  need(Number.isFinite(o.shutdownGraceMs) && o.shutdownGraceMs >= 0, 'shutdownGraceMs must be a number >= 0', o.shutdownGraceMs);
  need(typeof o.host === 'string' && o.host !== '', 'host must be a non-empty string', o.host);
  for (const k of ['headersTimeoutMs', 'requestTimeoutMs', 'keepAliveTimeoutMs', 'maxConnections'] as const) {
    need(Number.isSafeInteger(o[k]) && o[k] >= 1, `${k} (${LIMIT_FLAGS[k]}) must be a positive integer`, o[k]);
  }
  if (o.headersTimeoutMs > o.requestTimeoutMs) {
    throw new Error(`serve option headersTimeoutMs (${LIMIT_FLAGS.headersTimeoutMs}) ${o.headersTimeoutMs} must be at most requestTimeoutMs (${LIMIT_FLAGS.requestTimeoutMs}) ${o.requestTimeoutMs}: the headers are part of the request`);
  }
}
