import { readFileSync } from 'node:fs';

/** Read and parse a JSON file; errors name the file, what it was meant to be, and the cause. */
export function readJson(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read the ${what}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: the ${what} is not valid JSON: ${(e as Error).message}`);
  }
}

/** What a parsed JSON value is, for "expected X, found Y" messages: null, an array, an object, a string, a number, a boolean. */
export function jsonTypeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'object': return 'an object';
    case 'string': return 'a string';
    case 'number': return 'a number';
    case 'boolean': return 'a boolean';
    default: return typeof value;
  }
}
