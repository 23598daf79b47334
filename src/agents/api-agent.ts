/**
 * Zero-shot LLM trader over an OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama,
 * llama.cpp server, or `flag-trader serve`): each day the observation is rendered as the same prompt
 * the trained policy reads, sent as chat messages, and the reply is parsed into buy / sell / hold.
 *
 * Failure handling, in order:
 *  - HTTP 429 / 5xx / 408 / 409, timeouts and network errors are retried with backoff (api-retry.ts);
 *    when retries run out the decision throws (onApiError 'throw', the default) or becomes the
 *    fallback action (onApiError 'fallback'), counted in stats.apiErrors and stats.fallbacks.
 *  - A reply that parseAction cannot read is re-asked up to `parseRetries` times, with the bad reply
 *    and a short correction appended to the conversation (a different request, so a cached or
 *    deterministic server can answer differently). Still unreadable: the decision is the fallback
 *    action (default 'hold'), counted in stats.fallbacks; every unreadable reply counts in
 *    stats.unparseable. Nothing is guessed from an unreadable reply.
 * Every decision keeps its raw replies, parse results, latency and cache status (`decisions`), and
 * `writeLog` saves them with the stats as JSONL.
 */
import type { Agent } from './agent.js';
import { ACTIONS, type Action, type Observation } from '../env/types.js';
import { renderPrompt, type PromptOptions } from '../prompt/render.js';
import { toChatMessages } from '../prompt/chat.js';
import { parseAction, type ParsedAction } from '../prompt/parse.js';
import { writeFileAtomic } from '../util/atomic.js';
import { ApiCache, type ChatMessage } from './api-cache.js';
import { ChatClient, type ChatClientOptions } from './api-client.js';
import { ApiRequestError, DEFAULT_BACKOFF, type BackoffOptions, type RetryEvent } from './api-retry.js';

export interface ApiAgentOptions {
  /** Endpoint root, e.g. https://api.openai.com/v1, http://127.0.0.1:11434/v1. */
  baseUrl: string;
  /** Model name sent in each request. */
  model: string;
  /** Environment variable holding the API key (default OPENAI_API_KEY); unset or empty = no auth header. */
  apiKeyEnv?: string;
  /** Environment to read the key from (default process.env). */
  env?: Record<string, string | undefined>;
  /** Sampling temperature (default 0). */
  temperature?: number;
  /** Reply length limit (default 64 tokens: the JSON answer needs about 10). */
  maxTokens?: number;
  /** 'max_tokens' (default; vLLM, Ollama, llama.cpp) or 'max_completion_tokens' (newest OpenAI models). */
  maxTokensField?: 'max_tokens' | 'max_completion_tokens';
  /** Send response_format {type: 'json_object'} (default false); dropped once if the server rejects it. */
  jsonMode?: boolean;
  /** `seed` request field, for servers that support seeded sampling (default: not sent). */
  requestSeed?: number;
  /** Extra body fields sent with every request. */
  extraBody?: Record<string, unknown>;
  /**
   * Also send the observation in an `observation` body field (a `flag-trader serve` extension that
   * lets rule-baseline scorers answer chat requests). Default false: real APIs reject unknown fields.
   */
  attachObservation?: boolean;
  /** Per-request timeout (default 60000 ms). */
  timeoutMs?: number;
  /** HTTP retries per request (default 5). */
  maxRetries?: number;
  backoff?: Partial<BackoffOptions>;
  /** Seed of the retry jitter (default 0). */
  jitterSeed?: number;
  /** Requests in flight at most (default 4). */
  concurrency?: number;
  /** Reply cache folder (default: no cache). */
  cacheDir?: string | null;
  /** Re-asks after an unreadable reply (default 1). */
  parseRetries?: number;
  /** Action taken when the reply stays unreadable (default 'hold'). */
  fallback?: Action;
  /** What a request that fails for good does: 'throw' (default) or take the fallback action. */
  onApiError?: 'throw' | 'fallback';
  /**
   * Prompt rendering options: mode wording, style, and the budget (maxChars; maxTokens with
   * countTokens, which should count the endpoint model's tokens), applied as src/prompt/budget.ts
   * says: news items are dropped from the end of the day's list first, then filings and the last news
   * item are cut at a word. Default: the full prompt, no budget.
   */
  prompt?: PromptOptions;
  /** Replace the prompt: observation -> chat messages (default renderPrompt + toChatMessages). */
  messages?: (obs: Observation) => ChatMessage[];
  /** Replace the reply parser (default parseAction). */
  parse?: (reply: string) => ParsedAction;
  /** Default path of writeLog(). */
  logPath?: string;
  /** Agent name (default `api:MODEL`). */
  name?: string;
  /** Wait function for retries (tests record the delays instead of waiting). */
  sleep?: (ms: number) => Promise<void>;
}

export const API_AGENT_DEFAULTS = {
  apiKeyEnv: 'OPENAI_API_KEY',
  temperature: 0,
  maxTokens: 64,
  maxTokensField: 'max_tokens',
  jsonMode: false,
  timeoutMs: 60_000,
  maxRetries: 5,
  concurrency: 4,
  parseRetries: 1,
  fallback: 'hold',
  onApiError: 'throw',
} as const;

/** One chat completion asked for while deciding a day. */
export interface ApiCallRecord {
  /** 0 for the first ask, 1.. for re-asks after unreadable replies. */
  attempt: number;
  key: string;
  cached: boolean;
  latencyMs: number;
  /** HTTP requests sent for this call (0 when cached). */
  requests: number;
  retries: RetryEvent[];
  reply: string | null;
  finishReason: string | null;
  parsed: ParsedAction;
}

/** How one day's action was reached. */
export interface ApiDecision {
  /** Order in which decisions were started on this agent. */
  index: number;
  asset: string;
  date: string;
  step: number;
  action: Action;
  fallback: boolean;
  /** Why the fallback was taken (unreadable replies or the API error). */
  fallbackReason?: string;
  calls: ApiCallRecord[];
}

export interface ApiAgentStats {
  decisions: number;
  /** Completions asked for (first asks and re-asks, cached or not). */
  calls: number;
  cacheHits: number;
  /** HTTP requests sent, retries included. */
  requests: number;
  /** HTTP retries after 429 / 5xx / timeouts / network errors. */
  retries: number;
  /** Replies the parser could not read. */
  unparseable: number;
  /** Decisions that ended in the fallback action. */
  fallbacks: number;
  /** Decisions whose request failed for good (onApiError 'fallback' only; with 'throw' they throw). */
  apiErrors: number;
  /** Whether the server rejected response_format and JSON mode was dropped. */
  jsonModeDropped: boolean;
}

const REASK = 'Your previous reply could not be read';

export class ApiAgent implements Agent {
  readonly name: string;
  readonly decisions: ApiDecision[] = [];
  private readonly client: ChatClient;
  private readonly counts = { decisions: 0, calls: 0, unparseable: 0, fallbacks: 0, apiErrors: 0 };
  private jsonModeDropped = false;
  private readonly toMessages: (obs: Observation) => ChatMessage[];
  private readonly parse: (reply: string) => ParsedAction;
  private readonly parseRetries: number;
  private readonly fallback: Action;
  private readonly onApiError: 'throw' | 'fallback';

  constructor(private readonly o: ApiAgentOptions) {
    checkOptions(o);
    const d = API_AGENT_DEFAULTS;
    const keyEnv = o.apiKeyEnv ?? d.apiKeyEnv;
    const key = (o.env ?? process.env)[keyEnv];
    const clientOpts: ChatClientOptions = {
      baseUrl: o.baseUrl,
      model: o.model,
      apiKey: key ? key : null,
      temperature: o.temperature ?? d.temperature,
      maxTokens: o.maxTokens ?? d.maxTokens,
      maxTokensField: o.maxTokensField ?? d.maxTokensField,
      jsonMode: o.jsonMode ?? d.jsonMode,
      ...(o.requestSeed !== undefined ? { requestSeed: o.requestSeed } : {}),
      ...(o.extraBody ? { extraBody: o.extraBody } : {}),
      timeoutMs: o.timeoutMs ?? d.timeoutMs,
      maxRetries: o.maxRetries ?? d.maxRetries,
      backoff: { ...DEFAULT_BACKOFF, ...(o.backoff ?? {}) },
      jitterSeed: o.jitterSeed ?? 0,
      concurrency: o.concurrency ?? d.concurrency,
      cache: o.cacheDir ? new ApiCache(o.cacheDir) : null,
      ...(o.sleep ? { sleep: o.sleep } : {}),
    };
    this.client = new ChatClient(clientOpts);
    this.name = o.name ?? `api:${o.model}`;
    this.toMessages = o.messages ?? ((obs) => toChatMessages(renderPrompt(obs, o.prompt ?? {})));
    this.parse = o.parse ?? parseAction;
    this.parseRetries = o.parseRetries ?? d.parseRetries;
    this.fallback = o.fallback ?? d.fallback;
    this.onApiError = o.onApiError ?? d.onApiError;
  }

  get stats(): ApiAgentStats {
    const c = this.client.stats;
    return {
      decisions: this.counts.decisions,
      calls: this.counts.calls,
      cacheHits: c.cacheHits,
      requests: c.requests,
      retries: c.retries,
      unparseable: this.counts.unparseable,
      fallbacks: this.counts.fallbacks,
      apiErrors: this.counts.apiErrors,
      jsonModeDropped: this.jsonModeDropped,
    };
  }

  async act(obs: Observation): Promise<Action> {
    return (await this.decide(obs)).action;
  }

  /**
   * Decide several observations at once (e.g. the same day of several assets, or prefetching a
   * window whose observations do not depend on the agent's own actions). Requests run concurrently up
   * to `concurrency`; the actions come back in input order.
   */
  async actMany(observations: readonly Observation[]): Promise<Action[]> {
    return Promise.all(observations.map((obs) => this.act(obs)));
  }

  /** Decide one day and return the full record. */
  async decide(obs: Observation): Promise<ApiDecision> {
    // Render first: a prompt that cannot be built (e.g. over budget) throws before any record exists.
    let messages = this.toMessages(obs);
    const extra = this.o.attachObservation ? { observation: obs } : {};
    const decision: ApiDecision = {
      index: this.counts.decisions++,
      asset: obs.asset, date: obs.date, step: obs.step,
      action: this.fallback, fallback: false, calls: [],
    };
    this.decisions.push(decision);
    for (let attempt = 0; attempt <= this.parseRetries; attempt++) {
      let res;
      try {
        this.counts.calls++;
        res = await this.client.complete(messages, extra);
      } catch (caught) {
        const err = withPromptHint(caught);
        // Only endpoint failures may become the fallback; local faults (a corrupt cache file) always throw.
        if (this.onApiError === 'throw' || !(err instanceof ApiRequestError)) throw err;
        this.counts.apiErrors++;
        this.counts.fallbacks++;
        decision.fallback = true;
        decision.fallbackReason = `API error: ${err instanceof Error ? err.message : String(err)}`;
        return decision;
      }
      if (res.jsonModeDropped) this.jsonModeDropped = true;
      const parsed: ParsedAction = res.content === null || res.content.trim() === ''
        ? { ok: false, reason: 'empty reply' }
        : this.parse(res.content);
      decision.calls.push({
        attempt, key: res.key, cached: res.cached, latencyMs: res.latencyMs, requests: res.requests,
        retries: res.retries, reply: res.content, finishReason: res.finishReason, parsed,
      });
      if (parsed.ok) {
        decision.action = parsed.action;
        return decision;
      }
      this.counts.unparseable++;
      messages = [
        ...messages,
        { role: 'assistant', content: res.content ?? '' },
        { role: 'user', content: `${REASK} (${parsed.reason}). Answer again with JSON only: {"action": "buy" | "sell" | "hold"}` },
      ];
    }
    this.counts.fallbacks++;
    decision.fallback = true;
    decision.fallbackReason = `unreadable reply after ${this.parseRetries + 1} ask(s)`;
    return decision;
  }

  /**
   * Write the decisions (one JSON line each, in decision order) and a final stats line to `path`
   * (default the logPath option), atomically.
   */
  writeLog(path: string | undefined = this.o.logPath): void {
    if (!path) throw new Error('ApiAgent.writeLog: no path given and no logPath option set');
    const lines = [...this.decisions]
      .sort((a, b) => a.index - b.index)
      .map((d) => JSON.stringify({ type: 'decision', agent: this.name, ...d }));
    lines.push(JSON.stringify({ type: 'stats', agent: this.name, model: this.o.model, baseUrl: this.o.baseUrl, ...this.stats }));
    writeFileAtomic(path, `${lines.join('\n')}\n`);
  }
}

/** What a 400 says when the prompt is longer than the endpoint's model takes (OpenAI, vLLM, llama.cpp, flag-trader serve). */
const CONTEXT_TOO_LONG = /context[_ ]length|maximum context|context window|takes at most \d+|prompt is too long|too many tokens|exceeds? the (available )?context/i;

/**
 * An endpoint that refuses the prompt as too long: say how to budget it (the prompt options; the CLI
 * flags of src/agents/api-options.ts). Other errors pass unchanged.
 */
function withPromptHint(err: unknown): unknown {
  if (!(err instanceof ApiRequestError) || err.status !== 400 || !CONTEXT_TOO_LONG.test(err.message)) return err;
  return new ApiRequestError(`${err.message}. The prompt is longer than the endpoint's model takes: give the API agent a prompt budget `
    + '(prompt.maxChars, or prompt.maxTokens with countTokens; news items are cut first) or the compact prompt: flags --prompt-max-chars, '
    + 'or --prompt-max-tokens with --prompt-tokenizer, and --prompt-style compact (reproduce: --api-prompt-max-chars and so on)', err.attempts, err.status, err.cause);
}

function checkOptions(o: ApiAgentOptions): void {
  const bad = (field: string, want: string, got: unknown): never => {
    throw new Error(`ApiAgent option ${field}: expected ${want}, got ${JSON.stringify(got)}`);
  };
  if (typeof o.baseUrl !== 'string' || !/^https?:\/\/[^/]/.test(o.baseUrl)) bad('baseUrl', 'an http(s) URL such as http://127.0.0.1:8000/v1', o.baseUrl);
  if (typeof o.model !== 'string' || o.model.trim() === '') bad('model', 'a non-empty model name', o.model);
  if (o.temperature !== undefined && !(o.temperature >= 0 && o.temperature <= 2)) bad('temperature', 'a number in [0, 2]', o.temperature);
  const posInt = (field: string, v: number | undefined, min: number): void => {
    if (v !== undefined && !(Number.isInteger(v) && v >= min)) bad(field, `an integer >= ${min}`, v);
  };
  posInt('maxTokens', o.maxTokens, 1);
  posInt('timeoutMs', o.timeoutMs, 1);
  posInt('maxRetries', o.maxRetries, 0);
  posInt('concurrency', o.concurrency, 1);
  posInt('parseRetries', o.parseRetries, 0);
  if (o.fallback !== undefined && !(ACTIONS as readonly string[]).includes(o.fallback)) bad('fallback', ACTIONS.join(' | '), o.fallback);
  if (o.onApiError !== undefined && o.onApiError !== 'throw' && o.onApiError !== 'fallback') bad('onApiError', "'throw' | 'fallback'", o.onApiError);
  if (o.apiKeyEnv !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(o.apiKeyEnv)) bad('apiKeyEnv', 'an environment variable name', o.apiKeyEnv);
}
