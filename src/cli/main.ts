#!/usr/bin/env node
// The `flag-trader` command: each subcommand lives in its own module and registers itself here.
import { Command } from 'commander';
import { registerBacktest } from './backtest.js';
import { registerModel } from './model.js';
import { registerTrain } from './train.js';
import { registerServe } from './serve.js';
import { registerDemo, registerReproduce } from './reproduce.js';
import { registerPretrain } from './pretrain.js';
import { registerWorker } from './worker.js';

const program = new Command();
program
  .name('flag-trader')
  .description('FLAG-Trader: an LLM trading policy fine-tuned with PPO, in TypeScript')
  .showHelpAfterError();

registerDemo(program);
registerBacktest(program);
registerModel(program);
registerTrain(program);
registerServe(program);
registerReproduce(program);
registerPretrain(program);
registerWorker(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`flag-trader: ${msg}\n`);
  if (process.env.FLAG_TRADER_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
