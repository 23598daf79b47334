/**
 * `flag-trader serve`: an OpenAI-compatible HTTP server over an action scorer (see src/serve/server.ts):
 * a trained run (--run), an LLM read zero-shot (--model) or a rule baseline (--agent).
 *
 * Prompts the server renders itself (POST /v1/act) are budgeted the documented way (src/prompt/budget.ts:
 * news cut first): with --model by --prompt-max-tokens (default: the model's context less the chat
 * template's tokens and a margin) and --prompt-max-chars (default none), --max-prompt-chars capping
 * them too; with --run by the run's own config. What still does not fit is a 400 naming the sizes.
 */
import { Option, type Command } from 'commander';
import { agentNames } from '../agents/registry.js';
import { PolicyServer, SERVE_DEFAULTS, type ServeOptions } from '../serve/server.js';
import { runScorer, modelScorer } from '../serve/policy-scorer.js';
import { createScorer } from '../serve/scorers.js';
import type { ActionScorer } from '../serve/scorer.js';
import { seedOption } from '../util/seed.js';

/** A positive integer, or `none` (null) for no limit. */
function intOrNoneOption(flag: string) {
  return (v: string): number | null => {
    if (v.trim().toLowerCase() === 'none') return null;
    const n = Number(v);
    if (v.trim() === '' || !Number.isSafeInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer or none, got ${JSON.stringify(v)}`);
    return n;
  };
}

function intOption(flag: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new Error(`${flag}: expected an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
    return n;
  };
}

export interface ServeFlags {
  agent?: string;
  run?: string;
  model?: string;
  tokenizer?: string;
  /** A PEFT LoRA adapter folder: merged into --model's weights, or replacing --run's trained adapters. */
  adapter?: string;
  modelSeed?: number;
  /** The deprecated name of --model-seed. */
  weightsSeed?: number;
  promptStyle?: 'full' | 'compact';
  /** A number, or null for "none"; undefined: the default that fits the model's context. */
  promptMaxTokens?: number | null;
  promptMaxChars?: number;
  modelId?: string;
  host: string;
  port: number;
  apiKeyEnv?: string;
  maxBodyBytes: number;
  maxPromptChars: number;
  seed: number;
  shutdownGraceMs: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  maxConnections?: number;
  momentumLookback?: number;
  smaShort?: number;
  smaLong?: number;
  logRequests?: boolean;
}

/** The scorer the flags ask for: exactly one of --run (a trained policy), --model (zero-shot LLM), --agent (rule baseline). */
export async function scorerFromFlags(flags: ServeFlags): Promise<ActionScorer> {
  const chosen = [flags.run !== undefined && '--run', flags.model !== undefined && '--model', flags.agent !== undefined && '--agent'].filter(Boolean);
  if (chosen.length !== 1) {
    throw new Error(`serve: choose exactly one policy: --run DIR (a trained run), --model M (an LLM read zero-shot) or --agent NAME (a rule baseline: ${agentNames().join(', ')})${chosen.length > 1 ? `; got ${chosen.join(' and ')}` : ''}`);
  }
  if (flags.modelSeed !== undefined && flags.weightsSeed !== undefined) {
    throw new Error('serve: --weights-seed is the old name of --model-seed: give only --model-seed');
  }
  const modelSeed = flags.modelSeed ?? flags.weightsSeed;
  // Settings of --model would be silently ignored by the other policies: refuse them instead.
  if (flags.model === undefined) {
    const modelOnly = [flags.tokenizer !== undefined && '--tokenizer', modelSeed !== undefined && (flags.modelSeed !== undefined ? '--model-seed' : '--weights-seed'),
      flags.promptStyle !== undefined && '--prompt-style', flags.promptMaxTokens !== undefined && '--prompt-max-tokens',
      flags.promptMaxChars !== undefined && '--prompt-max-chars'].filter(Boolean);
    if (modelOnly.length) {
      throw new Error(`serve: ${modelOnly.join(', ')} ${modelOnly.length > 1 ? 'apply' : 'applies'} only to --model${flags.run !== undefined ? ' (a run renders its prompts with its own config: prompt_style, prompt_max_tokens, prompt_max_chars)' : ''}`);
    }
  }
  if (flags.agent !== undefined && flags.adapter !== undefined) throw new Error('serve: --adapter applies only to --model (merged into its weights) or --run (replacing its trained adapters)');
  if (flags.run !== undefined) return runScorer(flags.run, flags.modelId, { maxPromptChars: flags.maxPromptChars, ...(flags.adapter !== undefined && { adapter: flags.adapter }) });
  if (flags.model !== undefined) {
    return modelScorer(flags.model, {
      ...(flags.modelId !== undefined && { id: flags.modelId }),
      ...(flags.tokenizer !== undefined && { tokenizer: flags.tokenizer }),
      ...(flags.adapter !== undefined && { adapter: flags.adapter }),
      ...(modelSeed !== undefined && { seed: modelSeed }),
      ...(flags.promptStyle !== undefined && { promptStyle: flags.promptStyle }),
      ...(flags.promptMaxTokens !== undefined && { promptMaxTokens: flags.promptMaxTokens }),
      ...(flags.promptMaxChars !== undefined && { promptMaxChars: flags.promptMaxChars }),
      maxPromptChars: flags.maxPromptChars,
    });
  }
  return createScorer('agent', {
    agent: flags.agent,
    seed: flags.seed,
    ...(flags.modelId !== undefined && { id: flags.modelId }),
    ...(flags.momentumLookback !== undefined && { momentumLookback: flags.momentumLookback }),
    ...(flags.smaShort !== undefined && { smaShort: flags.smaShort }),
    ...(flags.smaLong !== undefined && { smaLong: flags.smaLong }),
  });
}

/** The bearer token named by --api-key-env; asking for one that is unset is an error, not "no auth". */
export function apiKeyFromEnv(name: string | undefined, env: Record<string, string | undefined> = process.env): string | null {
  if (name === undefined) return null;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`--api-key-env: expected an environment variable name, got ${JSON.stringify(name)}`);
  const key = env[name];
  if (!key) throw new Error(`--api-key-env ${name}: the environment variable ${name} is not set or empty`);
  return key;
}

/** The server's options from the parsed flags (the scorer and the bearer token come separately). */
export function serveOptionsFromFlags(flags: ServeFlags, scorer: ActionScorer, apiKey: string | null): ServeOptions {
  return {
    scorer,
    host: flags.host,
    port: flags.port,
    apiKey,
    maxBodyBytes: flags.maxBodyBytes,
    maxPromptChars: flags.maxPromptChars,
    seed: flags.seed,
    shutdownGraceMs: flags.shutdownGraceMs,
    ...(flags.headersTimeoutMs !== undefined && { headersTimeoutMs: flags.headersTimeoutMs }),
    ...(flags.requestTimeoutMs !== undefined && { requestTimeoutMs: flags.requestTimeoutMs }),
    ...(flags.keepAliveTimeoutMs !== undefined && { keepAliveTimeoutMs: flags.keepAliveTimeoutMs }),
    ...(flags.maxConnections !== undefined && { maxConnections: flags.maxConnections }),
    ...(flags.logRequests && {
      onRequest: (r) => process.stderr.write(`${new Date().toISOString()} ${r.method} ${r.path} ${r.status} ${r.ms.toFixed(1)}ms\n`),
    }),
  };
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve a trading policy over an OpenAI-compatible HTTP API (GET /v1/models, POST /v1/chat/completions, POST /v1/act, GET /health)')
    .option('--run <dir>', 'serve the trained policy of a run (flag-trader train --out DIR)')
    .option('--model <spec>', 'serve an LLM read zero-shot (folder, Hub id or random:<config>): action-word logits of its LM head')
    .option('--tokenizer <path>', '--model: tokenizer.json to use instead of the model\'s own')
    .option('--adapter <dir>', 'a PEFT LoRA adapter folder: with --model merged into its weights (W + alpha/r * B A); with --run its A and B replace the run\'s trained adapters')
    .option('--model-seed <n>', '--model random:<config>: seed of the random weights (as in train and model)', seedOption('--model-seed'))
    .addOption(new Option('--weights-seed <n>', 'deprecated name of --model-seed').argParser(seedOption('--weights-seed')).hideHelp())
    .addOption(new Option('--prompt-style <style>', '--model: how /v1/act renders observations (default full; training\'s prompt_style)').choices(['full', 'compact']))
    .option('--prompt-max-tokens <n>', '--model: token budget of the prompts /v1/act renders, in the model\'s tokens: whole news items are dropped from the end of the day\'s list first, then filing summaries and the last news item are cut at a word; a positive integer or none (default: the model\'s context less the chat template\'s tokens and a margin of 16)', intOrNoneOption('--prompt-max-tokens'))
    .option('--prompt-max-chars <n>', '--model: character budget of the prompts /v1/act renders, applied like --prompt-max-tokens (default none; --max-prompt-chars applies too)', intOption('--prompt-max-chars', 1))
    .addOption(new Option('--agent <name>', `baseline scorer: a rule agent with probability 1 on its action (${agentNames().join(', ')})`))
    .option('--model-id <id>', 'model id to report and accept (default baseline-NAME)')
    .option('--host <host>', 'interface to bind', SERVE_DEFAULTS.host)
    .option('--port <port>', 'port (0: any free port; the URL is printed)', intOption('--port', 0, 65535), SERVE_DEFAULTS.port)
    .option('--api-key-env <name>', 'require "Authorization: Bearer $NAME" on /v1/* (default: no auth)')
    .option('--max-body-bytes <n>', 'largest request body (413 above)', intOption('--max-body-bytes', 1), SERVE_DEFAULTS.maxBodyBytes)
    .option('--max-prompt-chars <n>', 'largest prompt in characters: chat requests above it get a 400; prompts rendered for /v1/act are cut to it (--model) or refused above it (--run)', intOption('--max-prompt-chars', 1), SERVE_DEFAULTS.maxPromptChars)
    .option('--seed <n>', 'seed of the baseline agent and of sampling for requests without a seed', seedOption('--seed'), SERVE_DEFAULTS.seed)
    .option('--shutdown-grace-ms <ms>', 'on SIGINT/SIGTERM, how long requests in flight may take', intOption('--shutdown-grace-ms', 0), SERVE_DEFAULTS.shutdownGraceMs)
    .option('--headers-timeout-ms <ms>', 'a client must send its request headers within this time (else 408 and the connection is closed)', intOption('--headers-timeout-ms', 1), SERVE_DEFAULTS.headersTimeoutMs)
    .option('--request-timeout-ms <ms>', 'a client must send its whole request (headers and body) within this time; at least --headers-timeout-ms', intOption('--request-timeout-ms', 1), SERVE_DEFAULTS.requestTimeoutMs)
    .option('--keep-alive-timeout-ms <ms>', 'an idle keep-alive connection is closed after this time', intOption('--keep-alive-timeout-ms', 1), SERVE_DEFAULTS.keepAliveTimeoutMs)
    .option('--max-connections <n>', 'most open connections; further ones are closed at once', intOption('--max-connections', 1), SERVE_DEFAULTS.maxConnections)
    .option('--momentum-lookback <days>', 'momentum agent: lookback in days (default 20)', intOption('--momentum-lookback', 1))
    .option('--sma-short <days>', 'sma-crossover agent: short window (default 5)', intOption('--sma-short', 1))
    .option('--sma-long <days>', 'sma-crossover agent: long window (default 20)', intOption('--sma-long', 1))
    .option('--log-requests', 'log each request (method, path, status, ms) to stderr')
    .action(async (flags: ServeFlags) => {
      const scorer = await scorerFromFlags(flags);
      const server = new PolicyServer(serveOptionsFromFlags(flags, scorer, apiKeyFromEnv(flags.apiKeyEnv)));
      const url = await server.listen();
      process.stdout.write(`flag-trader serve: model ${scorer.id} at ${url}/v1 (OpenAI base URL)\n`);
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string): void => {
          if (stopping) return;
          stopping = true;
          process.stdout.write(`flag-trader serve: ${signal}, finishing requests in flight and shutting down\n`);
          void server.close().then(resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      process.stdout.write('flag-trader serve: stopped\n');
    });
}
