// The folders of src/ form layers (docs/development.md, "Project layout"): a folder imports only from
// folders below it in this order, so that, e.g., the decoder (src/model) knows nothing of trading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './shared-paths.js';

const ORDER = ['util', 'data', 'env', 'prompt', 'kernels', 'model', 'rl', 'pretrain', 'agents', 'eval', 'report', 'pipeline', 'serve', 'cli'];
const SRC = join(repoRoot(), 'src'); // the TypeScript sources, also when the tests run compiled from dist/

test('every src/ folder is in the layer order, and no file imports a folder above its own', () => {
  const folders = readdirSync(SRC).filter((d) => statSync(join(SRC, d)).isDirectory());
  assert.deepEqual(folders.filter((d) => !ORDER.includes(d)), [], 'folders missing from the layer order (add them to ORDER and docs/development.md)');
  const leaks: string[] = [];
  let imports = 0;
  for (const dir of folders) {
    for (const file of readdirSync(join(SRC, dir)).filter((f) => f.endsWith('.ts'))) {
      const text = readFileSync(join(SRC, dir, file), 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'\.\.\/([a-z-]+)\//g)) {
        imports++;
        const target = m[1]!;
        if (!ORDER.includes(target)) leaks.push(`src/${dir}/${file} imports unknown folder src/${target}`);
        else if (ORDER.indexOf(target) > ORDER.indexOf(dir)) leaks.push(`src/${dir}/${file} imports src/${target} (a higher layer)`);
      }
    }
  }
  assert.ok(imports > 100, `the scan found ${imports} cross-folder imports; expected many (is the pattern still right?)`);
  assert.deepEqual(leaks, []);
});

test('the scan sees a leak: a model file importing src/rl would be reported', () => {
  const line = "import { x } from '../rl/policy.js';";
  const m = /(?:from|import)\s*\(?\s*'\.\.\/([a-z-]+)\//.exec(line);
  assert.equal(m?.[1], 'rl');
  assert.ok(ORDER.indexOf('rl') > ORDER.indexOf('model'));
});
