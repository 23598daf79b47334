/**
 * Disk cache of raw chat-completion replies, so that re-running an API-agent backtest sends no
 * requests and gives identical results.
 *
 * Key: sha256 of the canonical JSON (object keys sorted) of { baseUrl, model, messages, settings },
 * where settings are every other request field that can change the reply (temperature, max_tokens,
 * response_format, seed, extra body fields). Layout: DIR/replies/ab/abcdef....json, one file per reply,
 * written atomically. Each file stores the request it answers; a file whose stored request does not
 * match the lookup (corruption, a hand edit) is an error, never a silent hit.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../util/atomic.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface CacheRequest {
  baseUrl: string;
  model: string;
  messages: ChatMessage[];
  /** Every other request field that can change the reply. */
  settings: Record<string, unknown>;
}

export interface CachedReply {
  /** Assistant message content; null when the server sent none. */
  content: string | null;
  finishReason: string | null;
}

const CACHE_FORMAT = 1;

const entrySchema = z.object({
  format: z.literal(CACHE_FORMAT),
  key: z.string().regex(/^[0-9a-f]{64}$/),
  request: z.unknown(),
  reply: z.object({ content: z.string().nullable(), finishReason: z.string().nullable() }),
  savedAt: z.string(),
});

/** JSON with object keys sorted at every level and undefined fields left out: equal values, equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v as object).sort()) out[k] = (v as Record<string, unknown>)[k];
      return out;
    }
    return v;
  });
}

/** Trailing slashes do not change the endpoint, so they must not change the key. */
export function normalizeBaseUrl(url: string): string {
  return url.replace(/\/+$/, '');
}

export function cacheKey(req: CacheRequest): string {
  const canonical = canonicalJson({ ...req, baseUrl: normalizeBaseUrl(req.baseUrl) });
  return createHash('sha256').update(canonical).digest('hex');
}

export class ApiCache {
  constructor(readonly dir: string) {}

  pathFor(key: string): string {
    return join(this.dir, 'replies', key.slice(0, 2), `${key}.json`);
  }

  /** The cached reply for this request, or undefined. Throws on an unreadable or mismatched file. */
  get(req: CacheRequest): CachedReply | undefined {
    const key = cacheKey(req);
    const path = this.pathFor(key);
    if (!existsSync(path)) return undefined;
    const entry = readEntry(path);
    if (entry.key !== key) {
      throw new Error(`API cache file ${path}: stored key ${entry.key} does not match its file name; delete the file to re-query`);
    }
    const wanted = canonicalJson({ ...req, baseUrl: normalizeBaseUrl(req.baseUrl) });
    if (canonicalJson(entry.request) !== wanted) {
      throw new Error(`API cache file ${path}: stored request differs from the request being looked up; delete the file to re-query`);
    }
    return entry.reply;
  }

  put(req: CacheRequest, reply: CachedReply): void {
    const key = cacheKey(req);
    const entry = {
      format: CACHE_FORMAT,
      key,
      request: { ...req, baseUrl: normalizeBaseUrl(req.baseUrl) },
      reply,
      savedAt: new Date().toISOString(),
    };
    writeFileAtomic(this.pathFor(key), `${JSON.stringify(entry, null, 1)}\n`);
  }

  /**
   * Small facts learnt about an endpoint (e.g. "rejects response_format"), keyed like replies by
   * sha256 of a scope object, so that a re-run skips the request that taught them.
   */
  getMeta(scope: Record<string, unknown>): Record<string, unknown> | undefined {
    const path = this.metaPath(scope);
    if (!existsSync(path)) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new Error(`API cache file ${path} is not valid JSON (${(err as Error).message}); delete it to re-query`);
    }
    const r = z.object({ scope: z.unknown(), data: z.record(z.string(), z.unknown()) }).safeParse(parsed);
    if (!r.success) throw new Error(`API cache file ${path}: expected {scope, data}, ${r.error.issues[0]?.message ?? 'bad shape'}`);
    return r.data.data;
  }

  putMeta(scope: Record<string, unknown>, data: Record<string, unknown>): void {
    writeFileAtomic(this.metaPath(scope), `${JSON.stringify({ scope, data }, null, 1)}\n`);
  }

  private metaPath(scope: Record<string, unknown>): string {
    const key = createHash('sha256').update(canonicalJson(scope)).digest('hex');
    return join(this.dir, 'meta', `${key}.json`);
  }
}

function readEntry(path: string): z.infer<typeof entrySchema> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`API cache file ${path} is not valid JSON (${(err as Error).message}); delete it to re-query`);
  }
  const r = entrySchema.safeParse(parsed);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`API cache file ${path}: field '${issue?.path.join('.') ?? ''}' ${issue?.message ?? 'is invalid'}; delete it to re-query`);
  }
  return r.data;
}
