/**
 * The seed flag parsers, for the importers that still name this module (src/agents/api-options.ts,
 * src/cli/backtest.ts, src/cli/reproduce.ts, src/cli/serve.ts): they live in src/util/seed.ts, the
 * lowest layer, so that bench/ and src/agents use them without importing src/cli. Import them from
 * there; this file goes once nothing imports it.
 */
export { parseSeedValue, seedListOption, seedOption, SEED_RANGE } from '../util/seed.js';
