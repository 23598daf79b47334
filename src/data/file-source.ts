/**
 * Reading data files as text, gzip or not. A file is decompressed when it starts with the gzip magic
 * bytes (1f 8b), whatever its name; a file named *.gz that is not gzip data is an error rather than
 * being read as plain text.
 */
import { openSync, readSync, closeSync, createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createGunzip, gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { Readable } from 'node:stream';
import { DataError } from './errors.js';

const gunzipAsync = promisify(gunzip);

/** Whether the file holds gzip data; also the place where a missing or unreadable file is reported. */
export function isGzipFile(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new DataError({ file: path }, `cannot open the file (${describeFsError(err)})`);
  }
  try {
    const head = Buffer.alloc(2);
    let n: number;
    try {
      n = readSync(fd, head, 0, 2, 0);
    } catch (err) {
      throw new DataError({ file: path }, `cannot read the file (${describeFsError(err)})`);
    }
    const gz = n === 2 && head[0] === 0x1f && head[1] === 0x8b;
    if (!gz && /\.gz$/i.test(path)) throw new DataError({ file: path }, 'the name ends in .gz but the content is not gzip data');
    return gz;
  } finally {
    closeSync(fd);
  }
}

/** A stream of the file's (decompressed) bytes. Read errors and corrupt gzip data surface on this stream. */
export function openByteStream(path: string, highWaterMark = 1 << 20): Readable {
  const gz = isGzipFile(path);
  const raw = createReadStream(path, { highWaterMark });
  if (!gz) return raw;
  const unzip = createGunzip({ chunkSize: highWaterMark });
  raw.on('error', (err) => unzip.destroy(err));
  return raw.pipe(unzip);
}

/** The whole (decompressed) file as UTF-8 text; a leading byte-order mark is removed. */
export async function readWholeText(path: string): Promise<string> {
  const gz = isGzipFile(path);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new DataError({ file: path }, `cannot read the file (${describeFsError(err)})`);
  }
  if (gz) {
    try {
      bytes = await gunzipAsync(bytes);
    } catch (err) {
      throw new DataError({ file: path }, `cannot decompress the gzip data (${describeFsError(err)})`);
    }
  }
  return new TextDecoder('utf-8').decode(bytes);
}

/** Up to about `maxChars` characters from the start of the (decompressed) file, for format detection. */
export async function readHeadText(path: string, maxChars = 65536): Promise<string> {
  const stream = openByteStream(path, 65536);
  const decoder = new TextDecoder('utf-8');
  let text = '';
  try {
    for await (const chunk of stream) {
      text += decoder.decode(chunk as Buffer, { stream: true });
      if (text.length >= maxChars) break;
    }
  } catch (err) {
    throw new DataError({ file: path }, `cannot read the file (${describeFsError(err)})`);
  } finally {
    stream.destroy();
  }
  return text;
}

export function describeFsError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.startsWith(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** The default asset name of a file: its name without folders and extensions, upper-cased (msft.json -> MSFT). */
export function assetFromPath(path: string): string {
  const name = path.split(/[\\/]/).pop() ?? path;
  const stem = name.replace(/\.gz$/i, '').replace(/\.[^.]*$/, '');
  return (stem === '' ? name : stem).toUpperCase();
}
