/**
 * flag_trader.json: our metadata beside a pretrained model folder (config.json, model.safetensors,
 * tokenizer.json), written by `flag-trader pretrain`:
 *   { "format": "flag-trader/pretrained-model", "version": 1, "text_cutoff": "YYYY-MM-DD" | null, ... }
 * text_cutoff is the date of the latest text the model was pretrained on (null = not known). The
 * point-in-time guard (src/rl/point-in-time.ts) refuses to evaluate the model on a test window that
 * starts on or before it. Other fields (corpus, command, losses, ...) are kept as they are.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { isIsoDate } from '../data/dates.js';
import { writeFileAtomic } from '../util/atomic.js';
import { readJson } from '../util/read-json.js';

export const MODEL_META_FILE = 'flag_trader.json';
export const MODEL_META_FORMAT = 'flag-trader/pretrained-model';
export const MODEL_META_VERSION = 1;

// A real calendar date, not only its shape: 2020-02-30 would compare as a date that does not exist.
const calendarDate = z.string({ error: 'expected a date YYYY-MM-DD, or null when unknown' })
  .refine(isIsoDate, { message: 'expected a calendar date YYYY-MM-DD' });

const schema = z.looseObject({
  format: z.literal(MODEL_META_FORMAT, { error: `expected "${MODEL_META_FORMAT}"` }),
  version: z.literal(MODEL_META_VERSION, { error: `expected ${MODEL_META_VERSION} (the only version this code reads)` }),
  // Required (null allowed): a writer must say whether the cutoff is known.
  text_cutoff: calendarDate.nullable(),
});

export type ModelMeta = z.output<typeof schema>;

/** Validate a metadata object; `source` (a file path) heads the error, which names each bad field. */
export function parseModelMeta(input: unknown, source: string): ModelMeta {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new Error(`${source}: expected a JSON object with "format", "version" and "text_cutoff"`);
  }
  const r = schema.safeParse(input);
  if (!r.success) {
    const problems = r.error.issues.map((i) => {
      const field = i.path.length ? i.path.join('.') : '(object)';
      const got = i.path.length === 1 ? (input as Record<string, unknown>)[String(i.path[0])] : undefined;
      return `field "${field}": ${i.message}${got === undefined ? ' (missing)' : `, got ${JSON.stringify(got)}`}`;
    });
    throw new Error(`${source}: invalid model metadata: ${problems.join('; ')}`);
  }
  return r.data;
}

/** The metadata of a model folder, or null when the folder has no flag_trader.json. */
export function readModelMeta(dir: string): ModelMeta | null {
  const path = join(dir, MODEL_META_FILE);
  if (!existsSync(path)) return null;
  return parseModelMeta(readJson(path, 'model metadata'), path);
}

/** Write (atomically) a model folder's flag_trader.json; the metadata is validated first. */
export function writeModelMeta(dir: string, meta: ModelMeta): void {
  const path = join(dir, MODEL_META_FILE);
  const checked = parseModelMeta(meta, path);
  writeFileAtomic(path, `${JSON.stringify(checked, null, 2)}\n`);
}
