/**
 * One training run in its own process, for `reproduce --workers N` / `demo --workers N`: the runs of a
 * grid are independent, so N processes with 1/N of the threads each keep every core busy (small models
 * use one core poorly through BLAS threads). Usage (spawned by train-pool.ts):
 *   node [loader flags] train-worker.js RUN_DIR CONFIG_JSON_FILE
 * Finished runs are left alone, started ones resumed, new ones trained from the config; each run's
 * result is the same as a run in the parent process with the same config (threads included).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTrainConfig } from '../rl/config.js';
import { RUN_FILES, runTraining } from '../rl/run.js';

async function main(): Promise<void> {
  const [dir, configFile] = process.argv.slice(2);
  if (!dir || !configFile) throw new Error('usage: train-worker RUN_DIR CONFIG_JSON_FILE');
  if (existsSync(join(dir, RUN_FILES.policy))) return;
  if (existsSync(join(dir, RUN_FILES.config))) {
    await runTraining({ out: dir, resume: true });
    return;
  }
  const config = parseTrainConfig(JSON.parse(readFileSync(configFile, 'utf8')), configFile);
  await runTraining({ out: dir, config });
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
