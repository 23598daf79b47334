/**
 * Retry policy for chat-completion requests: which failures are worth another try, how long to wait
 * (exponential backoff with seeded jitter, or what the server asks for in Retry-After), and the loop.
 *
 * The openai client's own retries are switched off (maxRetries 0) so that every wait is decided here,
 * counted in the agent's stats, and reproducible from a seed.
 */
import { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import type { Rng } from '../util/rng.js';

export interface BackoffOptions {
  /** First backoff delay before jitter, ms (default 500). */
  baseMs: number;
  /** Largest backoff delay before jitter, ms (default 30000). */
  maxMs: number;
  /**
   * Largest Retry-After wait that is honoured, ms (default 120000). A server asking for more fails
   * the call with a clear error instead of stalling a backtest for an unbounded time.
   */
  maxRetryAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 30_000, maxRetryAfterMs: 120_000 };

/**
 * Backoff before retry number `retry` (0 for the first retry), "equal jitter":
 *   cap = min(maxMs, baseMs * 2^retry);  delay = cap/2 + u * cap/2,  u ~ U[0,1) from the seeded Rng.
 * Half the delay is guaranteed (so retries always spread out), half is random (so clients that failed
 * together do not retry together).
 */
export function backoffDelayMs(retry: number, opts: BackoffOptions, rng: Rng): number {
  const cap = Math.min(opts.maxMs, opts.baseMs * 2 ** retry);
  return cap / 2 + rng.uniform() * (cap / 2);
}

/**
 * The wait a server asks for, in ms, from `retry-after-ms` (milliseconds, non-standard but sent by
 * OpenAI) or `Retry-After` (delta-seconds or an HTTP date, RFC 9110). Undefined when absent or
 * unreadable; a date in the past gives 0.
 */
export function retryAfterMs(headers: Headers | undefined | null, nowMs: number = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = headers.get('retry-after-ms');
  if (ms !== null && /^\s*\d+(\.\d+)?\s*$/.test(ms)) return Number(ms);
  const ra = headers.get('retry-after');
  if (ra === null) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(ra)) return Number(ra) * 1000;
  // HTTP dates start with a day name (RFC 9110 and the obsolete forms); anything else is junk.
  if (!/^\s*[A-Za-z]/.test(ra)) return undefined;
  const when = Date.parse(ra);
  if (Number.isNaN(when)) return undefined;
  return Math.max(0, when - nowMs);
}

/** Why a failure is retryable, or null when it is not. */
export function retryReason(err: unknown): string | null {
  if (err instanceof APIConnectionTimeoutError) return 'timeout';
  if (err instanceof APIConnectionError) return 'network error';
  if (err instanceof APIError && typeof err.status === 'number') {
    // Same set as the HTTP semantics suggest: request timeout, conflict/lock, rate limit, server errors.
    if (err.status === 408 || err.status === 409 || err.status === 429 || err.status >= 500) return `HTTP ${err.status}`;
  }
  return null;
}

export interface RetryEvent {
  /** 0-based index of the retry about to happen. */
  retry: number;
  reason: string;
  delayMs: number;
  /** True when the delay came from the server's Retry-After. */
  fromRetryAfter: boolean;
}

export interface RetryLoopOptions {
  maxRetries: number;
  backoff: BackoffOptions;
  rng: Rng;
  sleep: (ms: number) => Promise<void>;
  onRetry?: (ev: RetryEvent) => void;
  /** Text naming the endpoint, for error messages. */
  what: string;
}

/** Error after the last try, or a non-retryable failure; `attempts` is how many requests were sent. */
export class ApiRequestError extends Error {
  constructor(message: string, readonly attempts: number, readonly status: number | undefined, override readonly cause: unknown) {
    super(message);
    this.name = 'ApiRequestError';
  }
}

/**
 * Run `fn` until it succeeds, retrying retryable failures up to `maxRetries` times. Non-retryable
 * failures are rethrown at once, wrapped with the endpoint and attempt count.
 */
export async function withRetries<T>(fn: () => Promise<T>, o: RetryLoopOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const reason = retryReason(err);
      const status = err instanceof APIError ? err.status : undefined;
      const detail = err instanceof Error ? err.message : String(err);
      if (reason === null) {
        throw new ApiRequestError(`${o.what}: request failed (not retryable): ${detail}`, attempt + 1, status, err);
      }
      if (attempt >= o.maxRetries) {
        throw new ApiRequestError(
          `${o.what}: request failed after ${attempt + 1} attempt(s), last error ${reason}: ${detail}`, attempt + 1, status, err);
      }
      const asked = err instanceof APIError ? retryAfterMs(err.headers) : undefined;
      if (asked !== undefined && asked > o.backoff.maxRetryAfterMs) {
        throw new ApiRequestError(
          `${o.what}: server asked to retry after ${Math.round(asked)} ms, more than maxRetryAfterMs=${o.backoff.maxRetryAfterMs}`,
          attempt + 1, status, err);
      }
      const delayMs = asked ?? backoffDelayMs(attempt, o.backoff, o.rng);
      o.onRetry?.({ retry: attempt, reason, delayMs, fromRetryAfter: asked !== undefined });
      await o.sleep(delayMs);
    }
  }
}

export const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
