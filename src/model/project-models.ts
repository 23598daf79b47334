/**
 * Models shipped inside the project (the `models/` folder at the package root), named by their folder:
 * `--model flag-news-tiny` loads models/flag-news-tiny/ from wherever the command runs. A local path
 * that exists wins over a shipped name; a name that is neither is tried as a Hub id.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: the nearest folder above this module with a package.json (src/ and dist/src/ alike). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the flag-trader package root (no package.json above src/model)');
    dir = up;
  }
}

export const PROJECT_MODELS_DIR = join(packageRoot(), 'models');

/** The folder of a shipped model named `spec`, or null when `spec` is not one. */
export function projectModelDir(spec: string): string | null {
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(spec)) return null;
  const dir = join(PROJECT_MODELS_DIR, spec);
  return existsSync(join(dir, 'config.json')) ? dir : null;
}
