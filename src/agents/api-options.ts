/**
 * The API agent from command-line style options: the flags (addApiAgentOptions), their mapping to
 * option fields (apiAgentOptionsFromFlags), and validation with messages that name the flag
 * (createApiAgentFromOptions). Values may be strings, as commander gives them, or numbers/booleans.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Option, type Command } from 'commander';
import { z } from 'zod';
import { ACTIONS } from '../env/types.js';
import { ByteTokenizer, loadHfTokenizer, type TextTokenizer } from '../model/tokenizer.js';
import type { PromptOptions } from '../prompt/render.js';
import { ApiAgent, API_AGENT_DEFAULTS, type ApiAgentOptions } from './api-agent.js';
import { isSeed, seedNumber, SEED_RANGE } from '../util/seed.js';
import { seedOption } from '../util/seed.js';

/** The flag that sets each field, for error messages and docs. */
export const API_AGENT_FLAGS = {
  baseUrl: '--base-url',
  apiModel: '--api-model',
  apiKeyEnv: '--api-key-env',
  temperature: '--temperature',
  maxTokens: '--max-tokens',
  maxTokensField: '--max-tokens-field',
  jsonMode: '--json-mode',
  cacheDir: '--api-cache',
  timeoutMs: '--api-timeout-ms',
  maxRetries: '--api-max-retries',
  concurrency: '--api-concurrency',
  fallback: '--api-fallback',
  parseRetries: '--api-parse-retries',
  onApiError: '--api-on-error',
  logPath: '--api-log',
  attachObservation: '--api-attach-observation',
  requestSeed: '--api-seed',
  seed: '--seed',
  mode: '--mode',
  allowShort: '--allow-short',
  promptStyle: '--prompt-style',
  promptMaxChars: '--prompt-max-chars',
  promptMaxTokens: '--prompt-max-tokens',
  promptTokenizer: '--prompt-tokenizer',
} as const;

export type ApiAgentFlagField = keyof typeof API_AGENT_FLAGS;

/** The API agent's prompt fields, each with the option name commander gives its flag. */
const PROMPT_FIELDS = ['promptStyle', 'promptMaxChars', 'promptMaxTokens', 'promptTokenizer'] as const;
type PromptField = typeof PROMPT_FIELDS[number];

/**
 * The prompt flags under another name, for commands whose --prompt-* flags configure something else
 * (`reproduce`, where they set the trained LLM's prompt): --api-prompt-style and so on.
 */
export const API_PREFIXED_PROMPT_FLAGS: Record<PromptField, string> = {
  promptStyle: '--api-prompt-style',
  promptMaxChars: '--api-prompt-max-chars',
  promptMaxTokens: '--api-prompt-max-tokens',
  promptTokenizer: '--api-prompt-tokenizer',
};

/** How commands name the API agent's flags: `plain` (--prompt-style, ...) or `api` (--api-prompt-style, ...). */
export type PromptFlagNames = 'plain' | 'api';

function flagNames(names: PromptFlagNames): Record<ApiAgentFlagField, string> {
  return names === 'api' ? { ...API_AGENT_FLAGS, ...API_PREFIXED_PROMPT_FLAGS } : { ...API_AGENT_FLAGS };
}

/** A number from a number or numeric text, checked; the message says what was expected. */
const numeric = (ok: (n: number) => boolean, expected: string) => z.unknown().transform((v, ctx) => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  if (!ok(n)) { ctx.addIssue({ code: 'custom', message: expected }); return z.NEVER; }
  return n;
});
const num = (lo: number, hi: number) => numeric((v) => Number.isFinite(v) && v >= lo && v <= hi, `a number in [${lo}, ${hi}]`);
const int = (lo: number) => numeric((v) => Number.isInteger(v) && v >= lo, `an integer >= ${lo}`);
/** Seeds: the one rule of every seed flag (src/util/seed.ts), so text beyond Number.MAX_SAFE_INTEGER is refused, not rounded. */
const seedField = z.unknown().transform((v, ctx) => {
  if (!isSeed(v)) { ctx.addIssue({ code: 'custom', message: SEED_RANGE }); return z.NEVER; }
  return seedNumber(v as number | string);
});
/** Booleans from flags (true) or from text ('true'/'false', '1'/'0'). */
const bool = z.unknown().transform((v, ctx) => {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  ctx.addIssue({ code: 'custom', message: 'true or false' });
  return z.NEVER;
});
const text = (re: RegExp, expected: string) => z.string({ error: expected }).regex(re, expected);
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) => z.enum(values, { error: values.join(' | ') });

const schema = z.object({
  baseUrl: text(/^https?:\/\/[^/]/, 'an http(s) URL such as http://127.0.0.1:8000/v1'),
  apiModel: text(/\S/, 'a non-empty model name'),
  apiKeyEnv: text(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name').optional(),
  temperature: num(0, 2).optional(),
  maxTokens: int(1).optional(),
  maxTokensField: oneOf(['max_tokens', 'max_completion_tokens']).optional(),
  jsonMode: bool.optional(),
  cacheDir: text(/./, 'a folder path').optional(),
  timeoutMs: int(1).optional(),
  maxRetries: int(0).optional(),
  concurrency: int(1).optional(),
  fallback: oneOf(ACTIONS).optional(),
  parseRetries: int(0).optional(),
  onApiError: oneOf(['throw', 'fallback']).optional(),
  logPath: text(/./, 'a file path').optional(),
  attachObservation: bool.optional(),
  requestSeed: seedField.optional(),
  seed: seedField.optional(),
  mode: oneOf(['benchmark', 'account']).optional(),
  allowShort: bool.optional(),
  promptStyle: oneOf(['full', 'compact']).optional(),
  promptMaxChars: int(1).optional(),
  promptMaxTokens: int(1).optional(),
  promptTokenizer: text(/\S/, 'a tokenizer.json file, a folder holding one, or "bytes"').optional(),
});

/**
 * The tokenizer that counts --prompt-max-tokens: `bytes` (the built-in byte-level tokenizer of
 * random:<config> models), a tokenizer.json file, or a model folder holding one (its
 * tokenizer_config.json beside it is read too).
 */
export function loadPromptTokenizer(spec: string, flag: string = API_AGENT_FLAGS.promptTokenizer): TextTokenizer {
  if (spec === 'bytes') return new ByteTokenizer();
  const file = existsSync(spec) && statSync(spec).isDirectory() ? join(spec, 'tokenizer.json') : spec;
  if (!existsSync(file)) throw new Error(`${flag}: ${file} does not exist; expected a tokenizer.json file, a folder holding one, or "bytes"`);
  const cfg = join(dirname(file), 'tokenizer_config.json');
  try {
    return loadHfTokenizer(file, existsSync(cfg) ? cfg : undefined);
  } catch (err) {
    throw new Error(`${flag}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export type ApiAgentFlagOptions = { [K in ApiAgentFlagField]?: unknown } & { baseUrl?: unknown; apiModel?: unknown };

/**
 * Build an ApiAgent from loosely typed options (CLI strings welcome). Throws an Error naming the flag
 * and what was expected, e.g. "--temperature: expected a number in [0, 2], got "abc"".
 * Unset fields take the defaults of API_AGENT_DEFAULTS. `names`: how the command names the prompt
 * flags, for the messages.
 */
export function createApiAgentFromOptions(opts: ApiAgentFlagOptions, extra: Partial<ApiAgentOptions> = {}, names: PromptFlagNames = 'plain'): ApiAgent {
  const flags = flagNames(names);
  const input: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts)) if (v !== undefined && k in API_AGENT_FLAGS) input[k] = v;
  if (input.baseUrl === undefined) throw new Error(`${flags.baseUrl} is required for an API agent (e.g. http://127.0.0.1:8000/v1)`);
  if (input.apiModel === undefined) throw new Error(`${flags.apiModel} is required for an API agent (the model name the endpoint serves)`);
  const r = schema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = String(issue.path[0]) as ApiAgentFlagField;
    const flag = flags[field] ?? field;
    throw new Error(`${flag}: expected ${issue.message}, got ${JSON.stringify(input[field])}`);
  }
  const o = r.data;
  // A token budget counts tokens of the endpoint's tokenizer, which only the user can name.
  if (o.promptMaxTokens !== undefined && o.promptTokenizer === undefined) {
    throw new Error(`${flags.promptMaxTokens} needs ${flags.promptTokenizer}: the tokenizer the endpoint's model uses (a tokenizer.json file, a folder holding one, or "bytes" for the byte-level tokenizer of random:<config> models); or budget characters with ${flags.promptMaxChars}`);
  }
  if (o.promptTokenizer !== undefined && o.promptMaxTokens === undefined) {
    throw new Error(`${flags.promptTokenizer} only counts tokens for ${flags.promptMaxTokens}; give ${flags.promptMaxTokens} too, or leave ${flags.promptTokenizer} out`);
  }
  const prompt: PromptOptions = {
    ...(o.mode !== undefined && { mode: o.mode }),
    ...(o.allowShort !== undefined && { allowShort: o.allowShort }),
    ...(o.promptStyle !== undefined && { style: o.promptStyle }),
    ...(o.promptMaxChars !== undefined && { maxChars: o.promptMaxChars }),
  };
  if (o.promptMaxTokens !== undefined) {
    const tokenizer = loadPromptTokenizer(o.promptTokenizer!, flags.promptTokenizer);
    prompt.maxTokens = o.promptMaxTokens;
    prompt.countTokens = (s: string) => tokenizer.encode(s).length;
  }
  const agentOpts: ApiAgentOptions = {
    baseUrl: o.baseUrl,
    model: o.apiModel,
    ...(o.apiKeyEnv !== undefined && { apiKeyEnv: o.apiKeyEnv }),
    ...(o.temperature !== undefined && { temperature: o.temperature }),
    ...(o.maxTokens !== undefined && { maxTokens: o.maxTokens }),
    ...(o.maxTokensField !== undefined && { maxTokensField: o.maxTokensField }),
    ...(o.jsonMode !== undefined && { jsonMode: o.jsonMode }),
    ...(o.cacheDir !== undefined && { cacheDir: o.cacheDir }),
    ...(o.timeoutMs !== undefined && { timeoutMs: o.timeoutMs }),
    ...(o.maxRetries !== undefined && { maxRetries: o.maxRetries }),
    ...(o.concurrency !== undefined && { concurrency: o.concurrency }),
    ...(o.fallback !== undefined && { fallback: o.fallback }),
    ...(o.parseRetries !== undefined && { parseRetries: o.parseRetries }),
    ...(o.onApiError !== undefined && { onApiError: o.onApiError }),
    ...(o.logPath !== undefined && { logPath: o.logPath }),
    ...(o.attachObservation !== undefined && { attachObservation: o.attachObservation }),
    ...(o.requestSeed !== undefined && { requestSeed: o.requestSeed }),
    ...(o.seed !== undefined && { jitterSeed: o.seed }),
    ...(Object.keys(prompt).length > 0 && { prompt }),
    ...extra,
  };
  return new ApiAgent(agentOpts);
}

/**
 * Add the API-agent flags to a command (e.g. `flag-trader backtest`). `--seed`, `--mode` and
 * `--allow-short` are not added: backtest already has them, and createApiAgentFromOptions reads them.
 * The prompt flags are --prompt-style, --prompt-max-chars, --prompt-max-tokens, --prompt-tokenizer
 * (names 'plain', as training's), or with names 'api' --api-prompt-style and so on (reproduce, where
 * --prompt-style and --prompt-max-tokens set the trained LLM's prompt).
 */
export function addApiAgentOptions(cmd: Command, names: PromptFlagNames = 'plain'): Command {
  const d = API_AGENT_DEFAULTS;
  const f = flagNames(names);
  return cmd
    .addOption(new Option('--base-url <url>', 'API agent: OpenAI-compatible endpoint, e.g. https://api.openai.com/v1, http://127.0.0.1:11434/v1'))
    .addOption(new Option('--api-model <name>', 'API agent: model name sent to the endpoint'))
    .addOption(new Option('--api-key-env <name>', `API agent: environment variable with the API key (default ${d.apiKeyEnv}; unset = no auth header)`))
    .addOption(new Option('--temperature <t>', `API agent: sampling temperature in [0, 2] (default ${d.temperature})`))
    .addOption(new Option('--max-tokens <n>', `API agent: reply length limit (default ${d.maxTokens})`))
    .addOption(new Option('--max-tokens-field <name>', `API agent: max_tokens or max_completion_tokens (default ${d.maxTokensField})`).choices(['max_tokens', 'max_completion_tokens']))
    .addOption(new Option('--json-mode', 'API agent: request response_format {"type":"json_object"} (dropped once if the server rejects it)'))
    .addOption(new Option('--api-cache <dir>', 'API agent: reply cache folder; a re-run sends no requests'))
    .addOption(new Option('--api-timeout-ms <ms>', `API agent: per-request timeout (default ${d.timeoutMs})`))
    .addOption(new Option('--api-max-retries <n>', `API agent: retries on 429/5xx/timeouts/network errors (default ${d.maxRetries})`))
    .addOption(new Option('--api-concurrency <n>', `API agent: requests in flight at most (default ${d.concurrency})`))
    .addOption(new Option('--api-fallback <action>', `API agent: action for unreadable replies (default ${d.fallback})`).choices([...ACTIONS]))
    .addOption(new Option('--api-parse-retries <n>', `API agent: re-asks after an unreadable reply (default ${d.parseRetries})`))
    .addOption(new Option('--api-on-error <what>', `API agent: when a request fails for good, throw or take the fallback (default ${d.onApiError})`).choices(['throw', 'fallback']))
    .addOption(new Option('--api-log <file>', 'API agent: write every decision (raw replies, parse results, latency) and the stats as JSONL'))
    .addOption(new Option('--api-attach-observation', 'API agent: also send the observation (flag-trader serve extension; real APIs reject it)'))
    .addOption(new Option('--api-seed <n>', 'API agent: `seed` request field for servers with seeded sampling').argParser(seedOption('--api-seed')))
    .addOption(new Option(`${f.promptStyle} <style>`, 'API agent: prompt style, full (paper-like) or compact (default full)').choices(['full', 'compact']))
    .addOption(new Option(`${f.promptMaxChars} <n>`, 'API agent: prompt budget in characters of the system and user messages; news items are dropped from the end of the day\'s list first, then filing summaries and the last news item are cut at a word (default none)'))
    .addOption(new Option(`${f.promptMaxTokens} <n>`, `API agent: prompt budget in tokens of ${f.promptTokenizer}, applied like ${f.promptMaxChars}; leave room for the endpoint's chat template (default none)`))
    .addOption(new Option(`${f.promptTokenizer} <path>`, `API agent: the endpoint model's tokenizer for ${f.promptMaxTokens}: a tokenizer.json file, a folder holding one, or bytes (the byte-level tokenizer of random:<config> models)`));
}

/** Map the parsed flags of addApiAgentOptions (commander's camelCase names) to the option fields. */
export function apiAgentOptionsFromFlags(flags: Record<string, unknown>, names: PromptFlagNames = 'plain'): ApiAgentFlagOptions {
  const p = names === 'api'
    ? { promptStyle: flags.apiPromptStyle, promptMaxChars: flags.apiPromptMaxChars, promptMaxTokens: flags.apiPromptMaxTokens, promptTokenizer: flags.apiPromptTokenizer }
    : { promptStyle: flags.promptStyle, promptMaxChars: flags.promptMaxChars, promptMaxTokens: flags.promptMaxTokens, promptTokenizer: flags.promptTokenizer };
  return {
    ...p,
    baseUrl: flags.baseUrl,
    apiModel: flags.apiModel,
    apiKeyEnv: flags.apiKeyEnv,
    temperature: flags.temperature,
    maxTokens: flags.maxTokens,
    maxTokensField: flags.maxTokensField,
    jsonMode: flags.jsonMode,
    cacheDir: flags.apiCache,
    timeoutMs: flags.apiTimeoutMs,
    maxRetries: flags.apiMaxRetries,
    concurrency: flags.apiConcurrency,
    fallback: flags.apiFallback,
    parseRetries: flags.apiParseRetries,
    onApiError: flags.apiOnError,
    logPath: flags.apiLog,
    attachObservation: flags.apiAttachObservation,
    requestSeed: flags.apiSeed,
    seed: flags.seed,
    mode: flags.mode,
    allowShort: flags.allowShort,
  };
}
