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
