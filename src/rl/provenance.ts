/**
 * What code produced a run: the git commit when the project is a git checkout (with a flag for
 * uncommitted changes under src/), and always the package version plus a sha256 over the files
 * under src/ (relative path and content, in sorted order), which identifies the code without git.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CodeVersion {
  package_version: string;
  src_sha256: string;
  git_commit: string | null;
  git_dirty: boolean | null;
}

/** The project root: the nearest folder above this module with a package.json named flag-trader. */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try { if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'flag-trader') return dir; } catch { /* keep looking */ }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the flag-trader project root (package.json) above src/rl');
    dir = up;
  }
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

export function codeVersion(): CodeVersion {
  const root = projectRoot();
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string };
  const src = join(root, 'src');
  const h = createHash('sha256');
  if (existsSync(src)) {
    for (const f of listFiles(src).map((p) => relative(root, p).split('\\').join('/')).sort()) {
      h.update(f).update('\0').update(readFileSync(join(root, f))).update('\0');
    }
  }
  let commit: string | null = null, dirty: boolean | null = null;
  try {
    const git = (args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    commit = git(['rev-parse', 'HEAD']);
    dirty = git(['status', '--porcelain', '--', 'src']).length > 0;
  } catch {
    commit = null; dirty = null; // not a git checkout, or no git: the src hash identifies the code
  }
  return { package_version: pkg.version ?? 'unknown', src_sha256: h.digest('hex'), git_commit: commit, git_dirty: dirty };
}
