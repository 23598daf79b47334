// Where tests find the shared test data and models: passed in by environment (see .ci/run), never hard-coded.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const DATA_DIR = process.env.FLAG_TRADER_DATA_DIR ?? '';
export const MODELS_DIR = process.env.FLAG_TRADER_MODELS_DIR ?? '';

/** Skip reason for node:test when the shared data is not available, or false when it is. */
export function needsData(...rel: string[]): string | false {
  if (!DATA_DIR) return 'FLAG_TRADER_DATA_DIR is not set';
  const p = join(DATA_DIR, ...rel);
  return existsSync(p) ? false : `${p} does not exist`;
}

export function needsModels(...rel: string[]): string | false {
  if (!MODELS_DIR) return 'FLAG_TRADER_MODELS_DIR is not set';
  const p = join(MODELS_DIR, ...rel);
  return existsSync(p) ? false : `${p} does not exist`;
}

export function dataPath(...rel: string[]): string {
  return join(DATA_DIR, ...rel);
}

export function modelsPath(...rel: string[]): string {
  return join(MODELS_DIR, ...rel);
}
