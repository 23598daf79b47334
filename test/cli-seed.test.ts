// One seed rule for every command (issue 12): a seed beyond Number.MAX_SAFE_INTEGER, or not an
// integer, is refused with an error naming the flag, instead of being rounded (backtest --seed
// 9007199254740993 used to run with 9007199254740992). Checked in-process through the real commands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { registerBacktest } from '../src/cli/backtest.js';
import { registerModel } from '../src/cli/model.js';
import { registerTrain } from '../src/cli/train.js';
import { registerServe } from '../src/cli/serve.js';
import { registerDemo, registerReproduce } from '../src/cli/reproduce.js';
import { registerPretrain } from '../src/cli/pretrain.js';
import { parseSeedValue, seedListOption } from '../src/util/seed.js';
import { createApiAgentFromOptions } from '../src/agents/api-options.js';

const UNSAFE = '9007199254740993'; // 2^53 + 1: Number() rounds it to 2^53
const MAX = String(Number.MAX_SAFE_INTEGER);

/** Parse a command line in-process; resolves to the error message ('' when parsing and the action succeeded). */
async function parseError(...args: string[]): Promise<string> {
  const program = new Command().exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  for (const register of [registerBacktest, registerModel, registerTrain, registerServe, registerDemo, registerReproduce, registerPretrain]) register(program);
  try { await program.parseAsync(['node', 'flag-trader', ...args]); return ''; } catch (e) { return (e as Error).message; }
}

const SEED_FLAGS: Array<{ args: string[]; flag: string }> = [
  { args: ['backtest'], flag: '--seed' },
  { args: ['backtest'], flag: '--api-seed' },
  { args: ['train'], flag: '--seed' },
  { args: ['train'], flag: '--model-seed' },
  { args: ['train'], flag: '--synthetic-seed' },
  { args: ['serve'], flag: '--seed' },
  { args: ['serve'], flag: '--model-seed' },
  { args: ['serve'], flag: '--weights-seed' },
  { args: ['model', 'info'], flag: '--weights-seed' },
  { args: ['generate', '--model', 'random:tiny', '--prompt', 'x'], flag: '--seed' },
  { args: ['pretrain', '--out', '/nonexistent'], flag: '--seed' },
  { args: ['pretrain', '--out', '/nonexistent'], flag: '--model-seed' },
  { args: ['demo'], flag: '--synthetic-seed' },
  { args: ['reproduce'], flag: '--synthetic-seed' },
];

test('every seed flag refuses an integer beyond Number.MAX_SAFE_INTEGER, naming the flag', async () => {
  for (const { args, flag } of SEED_FLAGS) {
    const msg = await parseError(...args, flag, UNSAFE);
    assert.match(msg, new RegExp(`${flag}: expected an integer from -${MAX} to ${MAX}, got ${UNSAFE}, beyond Number.MAX_SAFE_INTEGER \\(a double would round it to 9007199254740992\\)`), `${args.join(' ')} ${flag}: ${msg}`);
    const neg = await parseError(...args, flag, `-${UNSAFE}`);
    assert.match(neg, new RegExp(`${flag}: expected an integer from -${MAX} to ${MAX}, got -${UNSAFE}, beyond`), `${args.join(' ')} ${flag} -${UNSAFE}: ${neg}`);
  }
});

test('every seed flag refuses a non-integer, naming the flag', async () => {
  for (const { args, flag } of SEED_FLAGS) {
    for (const bad of ['1.5', 'abc', '1e3', '0x10', '']) {
      const msg = await parseError(...args, flag, bad);
      assert.match(msg, new RegExp(`${flag}: expected an integer, got ${JSON.stringify(bad).replace(/[.]/g, '\\.')} \\(a seed is an integer from -${MAX} to ${MAX}\\)`),
        `${args.join(' ')} ${flag} ${JSON.stringify(bad)}: ${msg}`);
    }
  }
});

test('seed lists (--seeds, --synthetic-seeds) use the same rule and name the item', async () => {
  for (const args of [['evaluate', '--run', '/nonexistent', '--sampled'], ['reproduce'], ['demo']]) {
    const msg = await parseError(...args, '--seeds', `1,${UNSAFE}`);
    assert.match(msg, new RegExp(`--seeds: item 2 of "1,${UNSAFE}": expected an integer from -${MAX} to ${MAX}, got ${UNSAFE}, beyond`), `${args[0]}: ${msg}`);
  }
  const msg = await parseError('pretrain', '--out', '/nonexistent', '--synthetic-seeds', '3,x');
  assert.match(msg, /--synthetic-seeds: item 2 of "3,x": expected an integer, got "x"/);
  assert.deepEqual(seedListOption('--seeds')(' 1, -2 ,3'), [1, -2, 3]);
  assert.throws(() => seedListOption('--seeds')('1,,2'), /--seeds: item 2 of "1,,2": expected an integer, got ""/);
});

test('the seed parser accepts the whole safe range, signs and blanks, and gives no -0', () => {
  assert.equal(parseSeedValue('--seed', MAX), Number.MAX_SAFE_INTEGER);
  assert.equal(parseSeedValue('--seed', `-${MAX}`), -Number.MAX_SAFE_INTEGER);
  assert.equal(parseSeedValue('--seed', ' +7 '), 7);
  assert.ok(Object.is(parseSeedValue('--seed', '-0'), 0));
  assert.throws(() => parseSeedValue('--seed', '9007199254740992'), /--seed: expected an integer from .*, got 9007199254740992, beyond/);
});

test('API-agent options: --seed and --api-seed follow the same rule when given as values', () => {
  const base = { baseUrl: 'http://127.0.0.1:1/v1', apiModel: 'm' };
  assert.throws(() => createApiAgentFromOptions({ ...base, requestSeed: UNSAFE }), new RegExp(`--api-seed: expected an integer from -${MAX} to ${MAX}, got "${UNSAFE}"`));
  assert.throws(() => createApiAgentFromOptions({ ...base, seed: 2 ** 53 }), /--seed: expected an integer from/);
  assert.equal(createApiAgentFromOptions({ ...base, requestSeed: '-3', seed: MAX }).name, 'api:m');
});
