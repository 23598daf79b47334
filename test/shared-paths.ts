// Where tests find the shared test data and models: passed in by environment (see .ci/run), never hard-coded.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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

/** The repository root: the nearest folder above this file with a package.json (works from test/ and dist/test/). */
export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) throw new Error('package.json not found above the test file');
    d = up;
  }
  return d;
}
