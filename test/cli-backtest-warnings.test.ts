// backtest says what it dropped or where the data cut the window: nothing narrows silently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const run = promisify(execFile);
const CLI = ['--import', 'tsx', 'src/cli/main.ts', 'backtest'];

test('--drop-invalid-rows reports each dropped row; a window beyond the data is named, not silently narrowed', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bt-warn-'));
  try {
    const csv = join(dir, 'X.csv');
    writeFileSync(csv, [
      'Date,Open,High,Low,Close,Adj Close,Volume',
      '2021-01-04,10,11,9,10,10,100',
      '2021-01-05,null,null,null,null,null,null',
      '2021-01-06,11,12,10,11,11,100',
      '2021-01-07,12,13,11,12,12,100',
    ].join('\n'));
    await assert.rejects(run(process.execPath, [...CLI, '--data', csv]), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, /X\.csv.*line 3/);
      return true;
    });
    const r = await run(process.execPath, [...CLI, '--data', csv, '--drop-invalid-rows', '--start', '2020-12-01', '--end', '2021-02-01', '--json']);
    assert.match(r.stderr, /warning: .*line 3/);
    assert.match(r.stderr, /warning: --start 2020-12-01 is before the data's first date 2021-01-04; the window starts at 2021-01-04/);
    assert.match(r.stderr, /warning: --end 2021-02-01 is after the data's last date 2021-01-07; the window ends at 2021-01-07/);
    const out = JSON.parse(r.stdout) as { prices: number; metrics: { cumulativeReturn: number } };
    assert.equal(out.prices, 3);
    assert.ok(Math.abs(out.metrics.cumulativeReturn - 100 * Math.log(12 / 10)) < 1e-9);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
