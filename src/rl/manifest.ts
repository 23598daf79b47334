/**
 * manifest.json of a run directory: the sha256 and size of each file the run writes and later reads
 * back (config.json, checkpoint.safetensors, policy.safetensors, and metrics.jsonl once the run is
 * finished). Loading a run (evaluate, resume, serve --run, reproduce) checks the files against it, so
 * a changed or corrupted file is an error naming the file instead of silently different results.
 *
 * Crash safety. A file is replaced in three atomic steps: the manifest records the new digest with
 * the file's current one as `previous`; the file is replaced; the manifest drops `previous`. A kill
 * between two steps leaves the file with one of the two digests the manifest records, and both are
 * accepted (the file is then either the old or the new version, each intact). `previous: null` means
 * the file did not exist before, so its absence is accepted too.
 *
 * metrics.jsonl gets a line appended after every update, so it is listed only once the run is
 * finished, and unlisted again while a resume rewrites it. An unfinished run's lines are not checked
 * here: a resume replaces them with the copy inside the (checked) checkpoint.
 *
 * Runs written before manifests existed have none; `config.json` of newer runs names the manifest
 * (`manifest` field), so a deleted manifest is an error for them rather than a silent skip.
 */
import { existsSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { sha256File } from '../model/load.js';
import { writeFileAtomic } from '../util/atomic.js';
import { readJson } from '../util/read-json.js';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 'flag-trader/run-manifest';

export interface FileDigest {
  sha256: string;
  bytes: number;
}

export interface ManifestEntry extends FileDigest {
  /** Only while the file is being replaced: its digest before (null: it did not exist). */
  previous?: FileDigest | null;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: 1;
  files: Record<string, ManifestEntry>;
}

function isDigest(x: unknown): x is FileDigest {
  if (!x || typeof x !== 'object') return false;
  const d = x as Record<string, unknown>;
  return typeof d.sha256 === 'string' && /^[0-9a-f]{64}$/.test(d.sha256) && Number.isSafeInteger(d.bytes) && (d.bytes as number) >= 0;
}

/** The run's manifest, or null when it has none; an unreadable or malformed manifest is an error naming it. */
export function readManifest(dir: string): Manifest | null {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) return null;
  const raw = readJson(path, 'run manifest') as Partial<Manifest> | null;
  if (!raw || typeof raw !== 'object' || raw.format !== MANIFEST_FORMAT || raw.version !== 1 || !raw.files || typeof raw.files !== 'object') {
    throw new Error(`${path}: expected a run manifest {"format": "${MANIFEST_FORMAT}", "version": 1, "files": {...}}`);
  }
  for (const [name, e] of Object.entries(raw.files)) {
    const prev = (e as ManifestEntry | undefined)?.previous;
    if (!isDigest(e) || !(prev === undefined || prev === null || isDigest(prev))) {
      throw new Error(`${path}: the entry of ${JSON.stringify(name)} must be {"sha256": 64 hex digits, "bytes": n} (and optionally "previous")`);
    }
  }
  return raw as Manifest;
}

/** sha256 and size of a file on disk. */
export function digestFile(path: string): FileDigest {
  return { sha256: sha256File(path), bytes: statSync(path).size };
}

function digestBytes(bytes: Uint8Array): FileDigest {
  return { sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
}

function matches(entry: ManifestEntry | undefined, d: FileDigest): boolean {
  if (!entry) return false;
  const same = (x: FileDigest | null | undefined) => !!x && x.sha256 === d.sha256 && x.bytes === d.bytes;
  return same(entry) || same(entry.previous);
}

export type VerifyResult = 'verified' | 'absent' | 'unlisted';

export interface VerifyOptions {
  /** A file present on disk but not listed: 'error' (default) or 'accept' (metrics.jsonl of an unfinished run). */
  unlisted?: 'error' | 'accept';
}

/**
 * Check one file of a run against its manifest. Returns 'verified' (it matches), 'absent' (it does
 * not exist, and the manifest does not say it should) or 'unlisted' (present, not listed, accepted).
 * Throws, naming the file and the manifest, when the checksum does not match, when a listed file is
 * missing, or when an unlisted file is present (unless accepted).
 */
export function verifyRunFile(dir: string, name: string, manifest: Manifest, opts: VerifyOptions = {}): VerifyResult {
  const path = join(dir, name);
  const manifestPath = join(dir, MANIFEST_FILE);
  const present = existsSync(path);
  const actual = present ? digestFile(path) : null;
  const check = (m: Manifest): VerifyResult | Error => {
    const entry = m.files[name];
    if (!actual) {
      if (!entry || entry.previous === null) return 'absent';
      return new Error(`${path} is missing, but ${manifestPath} lists it (sha256 ${entry.sha256}): the run directory is incomplete`);
    }
    if (!entry) {
      if (opts.unlisted === 'accept') return 'unlisted';
      return new Error(`${path} is not listed in ${manifestPath}: the run did not write it (the manifest lists ${Object.keys(m.files).join(', ') || 'no files'})`);
    }
    if (matches(entry, actual)) return 'verified';
    return new Error(`${path}: the sha256 checksum does not match the manifest: the file has sha256 ${actual.sha256} (${actual.bytes} bytes), `
      + `${manifestPath} records ${entry.sha256} (${entry.bytes} bytes); the file was changed or corrupted after the run wrote it`);
  };
  let r = check(manifest);
  // A training process may have written the file after the manifest was read: ask the current manifest.
  if (r instanceof Error) r = check(readManifest(dir) ?? manifest);
  if (r instanceof Error) throw r;
  return r;
}

/**
 * The manifest of a run that is writing files: each `write` records the new file's digest before it
 * replaces the file (see the crash-safety note above).
 */
export class ManifestWriter {
  private constructor(readonly dir: string, private readonly manifest: Manifest) {}

  /** A new, empty manifest (a new run). Nothing is written until the first file. */
  static fresh(dir: string): ManifestWriter {
    return new ManifestWriter(dir, { format: MANIFEST_FORMAT, version: 1, files: {} });
  }

  /** Continue an existing manifest (its files already checked by the caller). */
  static continue(dir: string, manifest: Manifest): ManifestWriter {
    return new ManifestWriter(dir, structuredClone(manifest));
  }

  /** A manifest for a run that had none: records the current digests of `names` that exist. */
  static adopt(dir: string, names: readonly string[]): ManifestWriter {
    const w = ManifestWriter.fresh(dir);
    for (const name of names) if (existsSync(join(dir, name))) w.manifest.files[name] = digestFile(join(dir, name));
    w.save();
    return w;
  }

  /** Write `bytes` to the run's file `name` (atomically), recording its digest first. */
  write(name: string, bytes: Uint8Array): void {
    const path = join(this.dir, name);
    const next = digestBytes(bytes);
    const old = this.manifest.files[name];
    // What the file holds now: the recorded digest, unless an earlier write was interrupted (or the
    // file is unlisted), in which case the file itself says which version it is.
    let previous: FileDigest | null;
    if (!existsSync(path)) previous = null;
    else if (old && old.previous === undefined) previous = { sha256: old.sha256, bytes: old.bytes };
    else previous = digestFile(path);
    this.manifest.files[name] = { ...next, previous };
    this.save();
    writeFileAtomic(path, bytes);
    this.manifest.files[name] = next;
    this.save();
  }

  /** List a file that is complete on disk now (metrics.jsonl of a finished run). */
  record(name: string): void {
    this.manifest.files[name] = digestFile(join(this.dir, name));
    this.save();
  }

  /** Unlist a file that is about to change in place (metrics.jsonl when a resume rewrites it). */
  forget(name: string): void {
    if (!(name in this.manifest.files)) return;
    delete this.manifest.files[name];
    this.save();
  }

  private save(): void {
    writeFileAtomic(join(this.dir, MANIFEST_FILE), JSON.stringify(this.manifest, null, 2) + '\n');
  }
}
