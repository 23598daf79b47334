// ISO dates with years below 100 (issue 12): 0099-01-02 is a date. Date.UTC reads years 0..99 as
// 1900..1999, so these used to be refused as "not YYYY-MM-DD".
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { dateOfDayNumber, dayNumber, isIsoDate, weekdayOfDayNumber } from '../src/data/dates.js';
import { loadSeries } from '../src/data/load.js';
import { tempFiles, yahooCsv } from './data-helpers.js';

const tmp = tempFiles();
after(() => tmp.cleanup());

test('years 0000..0999 are dates, with proleptic Gregorian leap years and exact day numbers', () => {
  for (const d of ['0099-01-02', '0000-01-01', '0001-01-01', '0096-02-29', '0999-12-31', '1999-12-31', '9999-12-31']) {
    assert.ok(isIsoDate(d), d);
    assert.equal(dateOfDayNumber(dayNumber(d)!), d, `round trip of ${d}`);
  }
  assert.equal(dayNumber('1970-01-01'), 0);
  assert.equal(dayNumber('0001-01-01'), -719162); // 1969 years of 365 days + 477 leap days
  assert.equal(dayNumber('0099-01-02')! - dayNumber('0099-01-01')!, 1);
  assert.equal(weekdayOfDayNumber(dayNumber('0001-01-01')!), 1); // a Monday in the proleptic Gregorian calendar
  for (const d of ['0099-02-29', '0100-02-29', '2021-02-30', '0099-13-01', '0099-00-10', '0099-1-02', '99-01-02']) assert.equal(isIsoDate(d), false, d);
});

test('a CSV with dates in year 0099 loads', async () => {
  const s = await loadSeries({ path: tmp.write('OLD.csv', yahooCsv([['0099-01-02', 1, 1, 1, 1, 1, 1], ['0099-01-05', 2, 2, 2, 2, 2, 2]])), start: '0099-01-02', end: '0099-01-05' });
  assert.deepEqual(s.dates, ['0099-01-02', '0099-01-05']);
  assert.deepEqual([...s.prices], [1, 2]);
});
