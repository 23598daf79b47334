/**
 * One chat-completion call against an OpenAI-compatible endpoint, through the official `openai`
 * client (its own retries off): disk cache first, then a bounded number of requests in flight, our
 * retry loop, and the response_format fallback for servers that reject JSON mode.
 */
import OpenAI from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { Rng } from '../util/rng.js';
import { ApiCache, cacheKey, normalizeBaseUrl, type CacheRequest, type ChatMessage } from './api-cache.js';
import { Semaphore } from './api-limit.js';
import { ApiRequestError, realSleep, withRetries, type BackoffOptions, type RetryEvent } from './api-retry.js';

export interface ChatClientOptions {
  /** e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1 */
  baseUrl: string;
  model: string;
  /** Bearer token; null sends no Authorization header (local servers). */
  apiKey: string | null;
  temperature: number;
  maxTokens: number;
  /** Name of the length field: OpenAI's newest models want max_completion_tokens, most servers max_tokens. */
  maxTokensField: 'max_tokens' | 'max_completion_tokens';
  /** Ask for response_format {type: 'json_object'}. */
  jsonMode: boolean;
  /** Sampling seed sent to the server (the `seed` request field), when set. */
  requestSeed?: number;
  /** Extra body fields for every request (server-specific options). */
  extraBody?: Record<string, unknown>;
  timeoutMs: number;
  maxRetries: number;
  backoff: BackoffOptions;
  /** Seed of the backoff jitter. */
  jitterSeed: number;
  /** Requests in flight at most. */
  concurrency: number;
  cache: ApiCache | null;
  sleep?: (ms: number) => Promise<void>;
}

export interface CompletionResult {
  content: string | null;
  finishReason: string | null;
  cached: boolean;
  /** sha256 cache key of the request. */
  key: string;
  /** Wall time of the call, including retries and waits. */
  latencyMs: number;
  /** HTTP requests this call sent (0 when cached). */
  requests: number;
  retries: RetryEvent[];
  /** True when this call learnt that the server rejects response_format and re-sent without it. */
  jsonModeDropped: boolean;
}

export interface ChatClientStats {
  /** Completions asked for (cached or not). */
  completions: number;
  cacheHits: number;
  /** HTTP requests sent, retries included. */
  requests: number;
  /** HTTP retries (429/5xx/network/timeout). */
  retries: number;
}

export class ChatClient {
  readonly stats: ChatClientStats = { completions: 0, cacheHits: 0, requests: 0, retries: 0 };
  private readonly client: OpenAI;
  private readonly limit: Semaphore;
  private readonly rng: Rng;
  private readonly sleep: (ms: number) => Promise<void>;
  private jsonMode: boolean;

  constructor(private readonly o: ChatClientOptions) {
    this.client = new OpenAI({
      baseURL: normalizeBaseUrl(o.baseUrl),
      // The client insists on a key; with none we give a placeholder and strip the header it makes.
      apiKey: o.apiKey ?? 'no-key',
      ...(o.apiKey === null ? { defaultHeaders: { Authorization: null } } : {}),
      maxRetries: 0,
      timeout: o.timeoutMs,
    });
    this.limit = new Semaphore(o.concurrency);
    this.rng = new Rng(o.jitterSeed);
    this.sleep = o.sleep ?? realSleep;
    this.jsonMode = o.jsonMode && o.cache?.getMeta(this.metaScope())?.['rejectsResponseFormat'] !== true;
  }

  /** Whether JSON mode is still being requested (false after the server rejected it). */
  get jsonModeActive(): boolean { return this.jsonMode; }

  /**
   * Ask for one completion of `messages`. `extra` adds per-request body fields (they are part of the
   * cache key). Throws ApiRequestError when the endpoint fails for good.
   */
  async complete(messages: ChatMessage[], extra: Record<string, unknown> = {}): Promise<CompletionResult> {
    const t0 = performance.now();
    this.stats.completions++;
    const retries: RetryEvent[] = [];
    let requests = 0;
    let jsonModeDropped = false;

    for (;;) {
      const req = this.cacheRequest(messages, extra);
      const key = cacheKey(req);
      const hit = this.o.cache?.get(req);
      if (hit) {
        this.stats.cacheHits++;
        return { ...hit, cached: true, key, latencyMs: performance.now() - t0, requests, retries, jsonModeDropped };
      }
      try {
        const reply = await this.limit.run(() => withRetries(async () => {
          requests++;
          this.stats.requests++;
          return this.send(req);
        }, {
          maxRetries: this.o.maxRetries,
          backoff: this.o.backoff,
          rng: this.rng,
          sleep: this.sleep,
          what: `${normalizeBaseUrl(this.o.baseUrl)}/chat/completions (model ${this.o.model})`,
          onRetry: (ev) => { retries.push(ev); this.stats.retries++; },
        }));
        this.o.cache?.put(req, reply);
        return { ...reply, cached: false, key, latencyMs: performance.now() - t0, requests, retries, jsonModeDropped };
      } catch (err) {
        // Some servers (older vLLM, llama.cpp builds) answer 400 to response_format: drop it once, remember.
        if (this.jsonMode && err instanceof ApiRequestError && err.status === 400 && /response_format/i.test(err.message)) {
          this.jsonMode = false;
          jsonModeDropped = true;
          this.o.cache?.putMeta(this.metaScope(), { rejectsResponseFormat: true });
          continue;
        }
        throw err;
      }
    }
  }

  private metaScope(): Record<string, unknown> {
    return { baseUrl: normalizeBaseUrl(this.o.baseUrl), model: this.o.model, fact: 'response_format' };
  }

  private cacheRequest(messages: ChatMessage[], extra: Record<string, unknown>): CacheRequest {
    const settings: Record<string, unknown> = {
      temperature: this.o.temperature,
      [this.o.maxTokensField]: this.o.maxTokens,
      ...(this.jsonMode ? { response_format: { type: 'json_object' } } : {}),
      ...(this.o.requestSeed !== undefined ? { seed: this.o.requestSeed } : {}),
      ...(this.o.extraBody ?? {}),
      ...extra,
    };
    return { baseUrl: this.o.baseUrl, model: this.o.model, messages, settings };
  }

  private async send(req: CacheRequest): Promise<{ content: string | null; finishReason: string | null }> {
    // The settings are exactly the body fields besides model and messages, so the key covers the body.
    const body = { ...req.settings, model: req.model, messages: req.messages, stream: false } as ChatCompletionCreateParamsNonStreaming;
    const resp: unknown = await this.client.chat.completions.create(body);
    const choice = (resp as { choices?: Array<{ message?: { content?: unknown }; finish_reason?: unknown }> } | null)?.choices?.[0];
    if (!choice || typeof choice.message !== 'object' || choice.message === null) {
      throw new Error(`malformed chat completion from ${req.baseUrl}: expected choices[0].message, got ${preview(resp)}`);
    }
    const content = choice.message.content;
    if (content !== null && content !== undefined && typeof content !== 'string') {
      throw new Error(`malformed chat completion from ${req.baseUrl}: choices[0].message.content is ${typeof content}, expected a string`);
    }
    return { content: content ?? null, finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : null };
  }
}

function preview(x: unknown): string {
  const s = typeof x === 'string' ? x : JSON.stringify(x) ?? String(x);
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
}
