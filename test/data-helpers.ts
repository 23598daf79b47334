// Helpers for the data tests: a temporary folder for small files, and a check that a promise fails
// with a DataError whose message names the file and where in it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { DataError } from '../src/data/errors.js';

export interface TempFiles {
  dir: string;
  /** Write a file in the folder and return its path. */
  write(name: string, content: string | Uint8Array): string;
  cleanup(): void;
}

export function tempFiles(): TempFiles {
  const dir = mkdtempSync(join(tmpdir(), 'flag-trader-data-'));
  return {
    dir,
    write(name, content) {
      const p = join(dir, name);
      writeFileSync(p, content);
      return p;
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Await `p`, expect a DataError, and check that its message contains every part. Returns the error. */
export async function rejectsWith(p: Promise<unknown> | (() => unknown), parts: (string | RegExp)[]): Promise<DataError> {
  let caught: unknown = undefined;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, `expected an error mentioning ${parts.join(' / ')}, but nothing was thrown`);
  assert.ok(caught instanceof DataError, `expected a DataError, got ${String(caught)}`);
  for (const part of parts) {
    if (typeof part === 'string') assert.ok(caught.message.includes(part), `message ${JSON.stringify(caught.message)} should mention ${JSON.stringify(part)}`);
    else assert.match(caught.message, part);
  }
  return caught;
}

/** A Yahoo CSV text from rows of [date, open, high, low, close, adjClose, volume]. */
export function yahooCsv(rows: (string | number)[][], header = 'Date,Open,High,Low,Close,Adj Close,Volume', eol = '\n'): string {
  return [header, ...rows.map((r) => r.join(','))].join(eol) + eol;
}
