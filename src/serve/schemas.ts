/**
 * Request schemas of the server (zod). Chat requests follow OpenAI's shape and tolerate fields this
 * server does not use (clients send many); fields it uses are checked strictly. /v1/act is our own
 * endpoint and rejects unknown top-level fields, so typos surface.
 */
import { z } from 'zod';

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a YYYY-MM-DD date');
const MAX_HISTORY = 100_000;

/** An Observation (src/env/types.ts) sent as JSON; unknown fields are dropped. */
export const observationSchema = z.object({
  asset: z.string().min(1, 'expected a non-empty asset name'),
  date: isoDate,
  t: z.int().min(0),
  step: z.int().min(0),
  dates: z.array(isoDate).min(1, 'expected at least one date (day t)').max(MAX_HISTORY),
  prices: z.array(z.number().positive('expected a positive price')).min(1, 'expected at least one price (day t)').max(MAX_HISTORY),
  text: z.array(z.object({ kind: z.enum(['news', '10k', '10q']), text: z.string() })),
  account: z.object({
    position: z.number(),
    cash: z.number(),
    shares: z.number(),
    value: z.number(),
    cumulativeReturn: z.number(),
  }),
}).superRefine((o, ctx) => {
  if (o.dates.length !== o.prices.length) {
    ctx.addIssue({ code: 'custom', path: ['prices'], message: `expected as many prices as dates (${o.dates.length}), got ${o.prices.length}` });
    return;
  }
  for (let i = 1; i < o.dates.length; i++) {
    if (!(o.dates[i]! > o.dates[i - 1]!)) {
      ctx.addIssue({ code: 'custom', path: ['dates', i], message: `dates must be strictly increasing: ${o.dates[i - 1]} then ${o.dates[i]}` });
      return;
    }
  }
  if (o.dates[o.dates.length - 1] !== o.date) {
    ctx.addIssue({ code: 'custom', path: ['dates'], message: `the last date must be the observation's date ${o.date}, got ${o.dates[o.dates.length - 1]}` });
  }
});

/** Message content: a string, or OpenAI's array of text parts; null only means "empty" (assistant turns). */
const content = z.unknown().transform((v, ctx): string => {
  if (typeof v === 'string') return v;
  if (v === null) return '';
  if (Array.isArray(v) && v.length > 0 && v.every((p) => p && typeof p === 'object' && (p as { type?: unknown }).type === 'text' && typeof (p as { text?: unknown }).text === 'string')) {
    return v.map((p) => (p as { text: string }).text).join('');
  }
  ctx.addIssue({ code: 'custom', message: 'expected a string or an array of text parts [{"type": "text", "text": "..."}] (images and audio are not supported)' });
  return z.NEVER;
});

export const chatMessageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content,
});

export const chatRequestSchema = z.looseObject({
  model: z.string().min(1, 'expected a model name (GET /v1/models lists it)'),
  messages: z.array(chatMessageSchema).min(1, 'expected at least one message'),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  n: z.int().min(1).nullish(),
  stream: z.boolean().nullish(),
  seed: z.int().nullish(),
  max_tokens: z.int().min(1).nullish(),
  max_completion_tokens: z.int().min(1).nullish(),
  response_format: z.looseObject({ type: z.enum(['text', 'json_object', 'json_schema']) }).nullish(),
  /** flag-trader extension: the observation, for scorers that cannot read a prompt (rule baselines). */
  observation: observationSchema.optional(),
});

export const actRequestSchema = z.strictObject({
  observation: observationSchema,
  temperature: z.number().min(0).max(2).nullish(),
  seed: z.int().nullish(),
});

export type ChatRequest = z.infer<typeof chatRequestSchema>;
export type ActRequest = z.infer<typeof actRequestSchema>;
