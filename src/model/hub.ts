// Download a model from the Hugging Face Hub (through @huggingface/hub) into a local cache folder
// that loads like any other model folder.
//
// Cache layout: <cacheDir>/<hub host>/models--<org>--<name>/<revision>/{config.json, tokenizer.json,
// tokenizer_config.json, chat_template.jinja and flag_trader.json when present, model.safetensors | model.safetensors.index.json
// + shards, .snapshot.json}.
// cacheDir defaults to $FLAG_TRADER_CACHE/hub, else ~/.cache/flag-trader/hub. Every file is streamed
// to a temporary name and renamed when complete; .snapshot.json is written last, and a snapshot that
// has it is used without any network access. A revision given as a branch name ("main") is therefore
// frozen at its first download: pass a commit hash to pin one exactly, or delete the folder to refresh.
// The Hub base URL is opts.hubUrl, else $HF_ENDPOINT, else https://huggingface.co; the access token is
// opts.accessToken, else $HF_TOKEN.
import { createWriteStream, existsSync, mkdirSync, openSync, fsyncSync, closeSync, renameSync, statSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { downloadFile, HubApiError } from '@huggingface/hub';
import { z } from 'zod';
import { writeFileAtomic } from '../util/atomic.js';
import { MODEL_META_FILE } from './meta.js';

export const DEFAULT_HUB_URL = 'https://huggingface.co';
export const SNAPSHOT_MANIFEST = '.snapshot.json';
/** A model's chat template in a file of its own (it replaces tokenizer_config.json's chat_template). */
export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';

export interface HubOptions {
  revision?: string;
  cacheDir?: string;
  hubUrl?: string;
  accessToken?: string;
  /** Called with one line per file downloaded (progress for long downloads). */
  log?: (message: string) => void;
}

export interface HubSnapshot {
  repo: string;
  revision: string;
  hubUrl: string;
  /** The folder holding the files; load it as a model folder. */
  dir: string;
  /** Relative paths of the files it holds. */
  files: string[];
  /** True when everything came from the cache (no network). */
  fromCache: boolean;
}

const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** `org/name` or `org/name@revision` -> parts, or null when the string is not a Hub id. */
export function parseHubId(spec: string): { repo: string; revision?: string } | null {
  const at = spec.indexOf('@');
  const repo = at >= 0 ? spec.slice(0, at) : spec;
  const revision = at >= 0 ? spec.slice(at + 1) : undefined;
  if (!REPO_ID.test(repo) || repo.includes('..') || repo.includes('--')) return null;
  if (revision !== undefined && (revision === '' || /[\s\\]|\.\./.test(revision))) return null;
  return revision === undefined ? { repo } : { repo, revision };
}

export function defaultHubCacheDir(): string {
  const root = process.env.FLAG_TRADER_CACHE;
  return root ? join(root, 'hub') : join(homedir(), '.cache', 'flag-trader', 'hub');
}

export function resolveHubUrl(hubUrl?: string): string {
  return (hubUrl ?? process.env.HF_ENDPOINT ?? DEFAULT_HUB_URL).replace(/\/+$/, '');
}

/** The cache folder of one (hub, repo, revision). */
export function snapshotDir(cacheDir: string, hubUrl: string, repo: string, revision: string): string {
  const host = new URL(hubUrl).host.replace(/[^A-Za-z0-9.-]/g, '_');
  return join(cacheDir, host, `models--${repo.replace('/', '--')}`, encodeURIComponent(revision));
}

const manifestSchema = z.object({
  repo: z.string(),
  revision: z.string(),
  files: z.array(z.object({ path: z.string(), size: z.number().int().nonnegative() })),
});

/** The cached snapshot's files when it is complete (manifest present, every file of its size). */
function completeSnapshot(dir: string): string[] | null {
  const mpath = join(dir, SNAPSHOT_MANIFEST);
  if (!existsSync(mpath)) return null;
  let m: z.infer<typeof manifestSchema>;
  try {
    m = manifestSchema.parse(JSON.parse(readFileSync(mpath, 'utf8')));
  } catch {
    return null; // unreadable manifest: treat the snapshot as incomplete and fetch again
  }
  for (const f of m.files) {
    const p = join(dir, f.path);
    if (!existsSync(p) || statSync(p).size !== f.size) return null;
  }
  return m.files.map((f) => f.path);
}

/** A shard name from an index must be a plain file name inside the snapshot. */
function checkShardName(name: string, where: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*\.safetensors$/.test(name)) {
    throw new Error(`${where}: shard file name ${JSON.stringify(name)} is not a plain *.safetensors file name`);
  }
}

/** Shard file names listed by a model.safetensors.index.json (checked), in first-use order. */
export function shardFilesOfIndex(indexPath: string): string[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new Error(`${indexPath}: cannot read the shard index: ${(e as Error).message}`);
  }
  const wm = (raw as { weight_map?: unknown } | null)?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) throw new Error(`${indexPath}: expected an object with a "weight_map" of tensor name -> file`);
  const files: string[] = [];
  for (const [tensor, file] of Object.entries(wm)) {
    if (typeof file !== 'string') throw new Error(`${indexPath}: weight_map["${tensor}"] must be a file name, got ${JSON.stringify(file)}`);
    checkShardName(file, `${indexPath}: weight_map["${tensor}"]`);
    if (!files.includes(file)) files.push(file);
  }
  return files;
}

function describeError(e: unknown): string {
  if (e instanceof HubApiError) return `HTTP ${e.statusCode}: ${e.message}`;
  const err = e as Error & { cause?: { code?: string; message?: string } };
  const cause = err.cause ? ` (${err.cause.code ?? err.cause.message ?? String(err.cause)})` : '';
  return `${err.message ?? String(e)}${cause}`;
}

/**
 * Make sure the model files of `repo` are in the cache and return where. No network when a complete
 * snapshot is cached.
 */
export async function downloadModel(repo: string, opts: HubOptions = {}): Promise<HubSnapshot> {
  const parsed = parseHubId(repo);
  if (!parsed || parsed.revision !== undefined) throw new Error(`"${repo}" is not a Hub model id; expected "org/name"`);
  const revision = opts.revision ?? 'main';
  const hubUrl = resolveHubUrl(opts.hubUrl);
  const cacheDir = opts.cacheDir ?? defaultHubCacheDir();
  const dir = snapshotDir(cacheDir, hubUrl, repo, revision);
  const cached = completeSnapshot(dir);
  if (cached) return { repo, revision, hubUrl, dir, files: cached, fromCache: true };

  const accessToken = opts.accessToken ?? process.env.HF_TOKEN ?? undefined;
  const what = `Hub model "${repo}" (revision ${revision}) at ${hubUrl}`;
  mkdirSync(dir, { recursive: true });
  const got: Array<{ path: string; size: number }> = [];
  let fetched = false;

  /** Fetch one file into the snapshot unless a previous run left it complete; false when absent. */
  const fetchFile = async (path: string, required: boolean): Promise<boolean> => {
    const dest = join(dir, path);
    if (existsSync(dest)) { got.push({ path, size: statSync(dest).size }); return true; }
    let blob: Blob | null;
    try {
      blob = await downloadFile({ repo, path, revision, hubUrl, ...(accessToken ? { accessToken } : {}) });
    } catch (e) {
      throw new Error(`${what}: cannot download ${path}: ${describeError(e)}`);
    }
    if (!blob) {
      if (required) throw new Error(`${what}: the repository has no ${path}`);
      return false;
    }
    fetched = true;
    opts.log?.(`downloading ${repo}/${path} (${blob.size} bytes)`);
    mkdirSync(dirname(dest), { recursive: true });
    const tmp = `${dest}.${process.pid}.incomplete`;
    try {
      await pipeline(Readable.fromWeb(blob.stream() as unknown as NodeReadableStream), createWriteStream(tmp));
      const size = statSync(tmp).size;
      if (size !== blob.size) throw new Error(`received ${size} of ${blob.size} bytes`);
      const fd = openSync(tmp, 'r');
      try { fsyncSync(fd); } finally { closeSync(fd); }
      renameSync(tmp, dest);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw new Error(`${what}: download of ${path} failed: ${describeError(e)}`);
    }
    got.push({ path, size: blob.size });
    return true;
  };

  await fetchFile('config.json', true);
  await fetchFile('tokenizer.json', false);
  await fetchFile('tokenizer_config.json', false);
  await fetchFile(CHAT_TEMPLATE_FILE, false); // newer repositories keep the chat template in its own file
  await fetchFile(MODEL_META_FILE, false); // our metadata (text cutoff), when the repository has one
  if (!(await fetchFile('model.safetensors', false))) {
    if (!(await fetchFile('model.safetensors.index.json', false))) {
      throw new Error(`${what}: the repository has neither model.safetensors nor model.safetensors.index.json`);
    }
    for (const shard of shardFilesOfIndex(join(dir, 'model.safetensors.index.json'))) await fetchFile(shard, true);
  }
  writeFileAtomic(join(dir, SNAPSHOT_MANIFEST), JSON.stringify({ repo, revision, hubUrl, files: got }, null, 2));
  return { repo, revision, hubUrl, dir, files: got.map((f) => f.path), fromCache: !fetched };
}
