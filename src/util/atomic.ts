import { writeSync, renameSync, openSync, fsyncSync, closeSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

/**
 * Write a file so that a crash or kill leaves either the old content or the new, never a torn file:
 * write a temporary sibling `.NAME.<pid>.<ms>.tmp`, fsync it, rename it over the target.
 *
 * On any failure (a full disk, a file size limit, a target that is a directory...) the temporary
 * file is removed and the error thrown names the target: `cannot write PATH: <cause>`, with the
 * original error as its `cause` (its `code`, e.g. ENOSPC, is copied onto the new error).
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  let tmp: string | null = null;
  try {
    mkdirSync(dirname(path), { recursive: true });
    const candidate = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
    const fd = openSync(candidate, 'w');
    tmp = candidate;
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      for (let off = 0; off < bytes.byteLength;) off += writeSync(fd, bytes, off, bytes.byteLength - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    tmp = null;
  } catch (err) {
    if (tmp !== null) {
      try { unlinkSync(tmp); } catch { /* already gone: nothing to clean */ }
    }
    const cause = err as NodeJS.ErrnoException;
    const e = new Error(`cannot write ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause }) as NodeJS.ErrnoException;
    if (cause?.code !== undefined) e.code = cause.code;
    throw e;
  }
}
