// writeFileAtomic (issue 12): when the write or the rename fails, the temporary `.NAME.<pid>.<ms>.tmp`
// is removed, the old file is untouched, and the error names the target (the original error is its cause).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/util/atomic.js';
import { repoRoot } from './shared-paths.js';

const TMP = mkdtempSync(join(tmpdir(), 'flag-trader-atomic-'));
after(() => rmSync(TMP, { recursive: true, force: true }));

test('writeFileAtomic writes the file and leaves no temporary file', () => {
  const dir = join(TMP, 'ok');
  writeFileAtomic(join(dir, 'a.json'), '{"a": 1}\n');
  writeFileAtomic(join(dir, 'b.bin'), new Uint8Array([1, 2, 3]));
  assert.equal(readFileSync(join(dir, 'a.json'), 'utf8'), '{"a": 1}\n');
  assert.deepEqual([...readFileSync(join(dir, 'b.bin'))], [1, 2, 3]);
  assert.deepEqual(readdirSync(dir).sort(), ['a.json', 'b.bin']);
});

test('a failed rename (the target is a directory) removes the temporary file and names the target', () => {
  const dir = join(TMP, 'rename');
  const target = join(dir, 'report.json');
  mkdirSync(join(target, 'inside'), { recursive: true }); // a non-empty directory where the file should go
  let err: NodeJS.ErrnoException | undefined;
  try { writeFileAtomic(target, '{"x": 1}\n'); } catch (e) { err = e as NodeJS.ErrnoException; }
  assert.ok(err, 'writeFileAtomic must throw');
  assert.match(err.message, new RegExp(`^cannot write ${target.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: E[A-Z]+`));
  assert.ok(err.cause instanceof Error, 'the original error is the cause');
  assert.equal(err.code, (err.cause as NodeJS.ErrnoException).code);
  assert.deepEqual(readdirSync(dir), ['report.json'], 'no .report.json.*.tmp left behind');
});

test('a failed directory creation names the target', () => {
  const file = join(TMP, 'plain-file');
  writeFileSync(file, 'x');
  assert.throws(() => writeFileAtomic(join(file, 'sub', 'out.json'), '{}'),
    (e: NodeJS.ErrnoException) => e.message.startsWith(`cannot write ${join(file, 'sub', 'out.json')}: `) && e.code === 'ENOTDIR' && e.cause instanceof Error);
});

// A real write failure: a child process with a 64 KiB file size limit (ulimit -f) writes 1 MiB, so
// write(2) fails with EFBIG part-way, as ENOSPC would on a full disk.
test('a failed write (file size limit) removes the temporary file, keeps the old file, and names the target', { skip: process.platform === 'win32' }, async () => {
  const dir = join(TMP, 'efbig');
  mkdirSync(dir);
  const target = join(dir, 'weights.bin');
  writeFileSync(target, 'old content');
  const script = `
    import { readdirSync } from 'node:fs';
    import { writeFileAtomic } from ${JSON.stringify(join(repoRoot(), 'src', 'util', 'atomic.ts'))};
    let out = { threw: false };
    try { writeFileAtomic(${JSON.stringify(target)}, new Uint8Array(1 << 20)); }
    catch (e) { out = { threw: true, message: e.message, code: e.code, causeCode: e.cause?.code }; }
    out.files = readdirSync(${JSON.stringify(dir)});
    process.stdout.write(JSON.stringify(out));`;
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile('bash', ['-c', 'ulimit -f 64 && exec "$0" --import tsx --input-type=module -e "$1"', process.execPath, script],
      { cwd: repoRoot(), timeout: 60000 }, (err, out, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(out)));
  });
  const r = JSON.parse(stdout) as { threw: boolean; message?: string; code?: string; causeCode?: string; files: string[] };
  assert.equal(r.threw, true, 'the write over the size limit must fail');
  assert.equal(r.code, 'EFBIG');
  assert.equal(r.causeCode, 'EFBIG');
  assert.ok(r.message!.startsWith(`cannot write ${target}: EFBIG`), r.message);
  assert.deepEqual(r.files, ['weights.bin'], 'no temporary file left behind');
  assert.equal(readFileSync(target, 'utf8'), 'old content', 'the old file is untouched');
});
