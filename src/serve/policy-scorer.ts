/**
 * Scorers over real policies, for `flag-trader serve`:
 *   - a trained run (`--run DIR`): the policy its config builds, with the run's trained weights;
 *   - a model (`--model M`): the LLM read zero-shot through the LM head's action-word logits (no training).
 * An LLM policy reads chat messages directly (the client's prompt in the model's chat template, ChatML
 * when it has none, then the answer prefix `{"action": "`); every policy also scores an observation
 * (/v1/act), rendered exactly as in training.
 *
 * Prompts rendered from an observation are budgeted the documented way (src/prompt/budget.ts: news cut
 * first, then filing summaries; instructions, numbers and the account never): a run with its training budget
 * (prompt_max_tokens / prompt_max_chars of its config), a model with ModelScorerOptions (by default a
 * token budget that fits the model's context: max_position_embeddings less the chat template's tokens
 * and a margin). What still cannot be served is a 400, never a 500: an observation the renderer
 * refuses, a budget too small for the parts that are never cut, a prompt over the server's
 * maxPromptChars or over the model's context.
 */
import { basename, resolve } from 'node:path';
import { ACTIONS, type Observation } from '../env/types.js';
import { getBackend } from '../kernels/index.js';
import { ACTION_ANSWER_PREFIX } from '../prompt/chat.js';
import { loadModel } from '../model/load.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { renderChatPrompt, type ChatPrompt } from '../model/chat-template.js';
import { loadParamsInto, readPolicyTensors } from '../rl/checkpoint.js';
import { loadRunAdapter, trainedWeightsPath } from '../eval/evaluate.js';
import { LlmPolicy } from '../rl/llm-policy.js';
import { createPolicy } from '../rl/policies.js';
import { savedTensors, type ActorCritic } from '../rl/policy.js';
import { readRunRecord } from '../rl/run.js';
import { HttpError } from './http-errors.js';
import type { ActionProbabilities, ActionScorer, ScorerMessage } from './scorer.js';

function probabilities(logProbs: Float64Array): ActionProbabilities {
  const p = {} as ActionProbabilities;
  ACTIONS.forEach((a, i) => { p[a] = Math.exp(logProbs[i]!); });
  return p;
}

/** Limits a policy scorer enforces on the prompts it renders from observations. */
export interface PolicyScorerLimits {
  /** Largest rendered prompt, in characters of all message contents (the server's --max-prompt-chars); larger -> 400. */
  maxPromptChars?: number;
  /** How to change the budget, for the 400 messages (e.g. "--prompt-max-tokens / --prompt-max-chars"). */
  budgetHint?: string;
}

/** A scorer over any trained ActorCritic; prompts are read only by LLM policies. */
export function policyScorer(policy: ActorCritic, id: string, limits: PolicyScorerLimits = {}): ActionScorer {
  const scorer: ActionScorer = {
    id,
    scoreObservation(obs: Observation): ActionProbabilities {
      return probabilities(policy.forward(policy.encode(obs), false).logProbs);
    },
  };
  if (policy instanceof LlmPolicy) {
    const llm = policy;
    const limit = llm.model.config.max_position_embeddings;
    const hint = limits.budgetHint ? ` (${limits.budgetHint})` : '';
    scorer.scoreObservation = (obs: Observation): ActionProbabilities => {
      // Render (with the budget) first: whatever the renderer refuses is the request's fault, a 400.
      let rendered: ReturnType<LlmPolicy['promptText']>;
      try {
        rendered = llm.promptText(obs);
      } catch (err) {
        const msg = (err as Error).message;
        const budget = /^prompt budget too small/.test(msg);
        throw new HttpError(400, budget
          ? `the observation's prompt cannot be made to fit: ${msg}${hint}`
          : `the observation cannot be rendered as a prompt: ${msg}`,
        'invalid_request_error', 'observation', budget ? 'context_length_exceeded' : 'invalid_value');
      }
      const { messages, text, marks } = rendered;
      if (limits.maxPromptChars !== undefined) {
        const chars = messages.reduce((n, m) => n + m.content.length, 0);
        if (chars > limits.maxPromptChars) {
          throw new HttpError(400, `the rendered prompt has ${chars} characters, more than this server's limit of ${limits.maxPromptChars} (--max-prompt-chars)${hint}`,
            'invalid_request_error', 'observation', 'context_length_exceeded');
        }
      }
      checkContext(llm.tokenizer, text, limit, 'observation', hint);
      return probabilities(llm.forward(llm.encodeText(text, marks), false).logProbs);
    };
    scorer.scorePrompt = (messages: ScorerMessage[]): ActionProbabilities => {
      let chat: ChatPrompt;
      try {
        chat = renderChatPrompt(llm.tokenizer, messages, true);
      } catch (err) {
        throw new HttpError(400, `messages cannot be rendered for this model: ${(err as Error).message}`, 'invalid_request_error', 'messages');
      }
      const text = chat.text + ACTION_ANSWER_PREFIX; // the answer prefix follows the template's generation prompt
      checkContext(llm.tokenizer, text, limit, 'messages', '');
      // The system turn is usually the same across requests: cache its frozen-layer output (where the
      // template lets it be split off: renderChatPrompt).
      const marks = chat.prefixEnd > 0 ? [chat.prefixEnd] : [];
      return probabilities(llm.forward(llm.encodeText(text, marks)).logProbs);
    };
  }
  return scorer;
}

/** A prompt longer than the model's context is the request's fault: a 400 naming both sizes. */
function checkContext(tokenizer: TextTokenizer, text: string, limit: number, param: string, hint: string): void {
  const ids = tokenizer.encode(text).length;
  if (ids > limit) {
    throw new HttpError(400, `the prompt is ${ids} tokens; this model takes at most ${limit}${hint}`, 'invalid_request_error', param, 'context_length_exceeded');
  }
}

/** The trained policy of a run directory (flag-trader train --out DIR); its prompts use the run's own budget. */
export async function runScorer(run: string, id?: string, limits: Pick<PolicyScorerLimits, 'maxPromptChars'> & { adapter?: string } = {}): Promise<ActionScorer> {
  const record = readRunRecord(run);
  const policy = await createPolicy(record.config);
  if (policy.fingerprint !== record.hashes.model) {
    throw new Error(`${run}: the policy built from its config has fingerprint ${policy.fingerprint}, but the run recorded ${record.hashes.model}`);
  }
  const path = trainedWeightsPath(run);
  loadParamsInto(savedTensors(policy), readPolicyTensors(path).params, path);
  if (limits.adapter !== undefined) loadRunAdapter(policy, limits.adapter, run);
  return policyScorer(policy, id ?? `flag-trader-${basename(resolve(run))}`, {
    ...(limits.maxPromptChars !== undefined && { maxPromptChars: limits.maxPromptChars }), budgetHint: 'the run\'s prompt budget is its config\'s prompt_max_tokens / prompt_max_chars',
  });
}

export interface ModelScorerOptions {
  id?: string;
  tokenizer?: string;
  /** A PEFT LoRA adapter folder merged into the model's weights as they load. */
  adapter?: string;
  /** Seed of random:<config> weights. */
  seed?: number;
  /** Prompt style used when rendering observations (/v1/act); default 'full'. */
  promptStyle?: 'full' | 'compact';
  /**
   * Token budget of prompts rendered from observations (system + user, the model's tokenizer).
   * Default (undefined): defaultPromptMaxTokens, the model's context less the chat template. null: none.
   */
  promptMaxTokens?: number | null;
  /** Character budget of prompts rendered from observations; default none. */
  promptMaxChars?: number;
  /** The server's --max-prompt-chars: also a character budget of rendered prompts (the smaller one applies). */
  maxPromptChars?: number;
}

/** Tokens the budget leaves free for the chat template's own tokens beyond those it measures (BPE merges, roles). */
export const PROMPT_TOKEN_MARGIN = 16;

/**
 * Tokens of everything around the budgeted texts: the chat template's rendering of an empty system and
 * user message (its default texts and date lines included), the assistant turn and the answer prefix.
 */
export function chatTemplateTokens(tokenizer: TextTokenizer): number {
  const frame = tokenizer.applyChatTemplate([{ role: 'system', content: '' }, { role: 'user', content: '' }], true) + ACTION_ANSWER_PREFIX;
  return tokenizer.encode(frame).length;
}

/** The default token budget of a model's rendered prompts: its context less the chat template and PROMPT_TOKEN_MARGIN. */
export function defaultPromptMaxTokens(contextTokens: number, tokenizer: TextTokenizer): number {
  return Math.max(1, contextTokens - chatTemplateTokens(tokenizer) - PROMPT_TOKEN_MARGIN);
}

/** An untrained LLM read zero-shot through its LM head's action-word logits. */
export async function modelScorer(spec: string, o: ModelScorerOptions = {}): Promise<ActionScorer> {
  const positive = (name: string, v: number | null | undefined): void => {
    if (v !== undefined && v !== null && !(Number.isSafeInteger(v) && v > 0)) throw new Error(`${name}: expected a positive integer, got ${String(v)}`);
  };
  positive('--prompt-max-tokens', o.promptMaxTokens);
  positive('--prompt-max-chars', o.promptMaxChars);
  positive('--max-prompt-chars', o.maxPromptChars);
  const model = await loadModel(spec, { ...(o.seed !== undefined && { seed: o.seed }), ...(o.tokenizer !== undefined && { tokenizerPath: o.tokenizer }), ...(o.adapter !== undefined && { adapter: o.adapter }) });
  const context = model.config.max_position_embeddings;
  const frame = chatTemplateTokens(model.tokenizer);
  if (typeof o.promptMaxTokens === 'number' && o.promptMaxTokens > context - frame) {
    throw new Error(`--prompt-max-tokens ${o.promptMaxTokens} does not fit ${spec}: the model takes at most ${context} tokens and the chat template needs ${frame} of them; give at most ${context - frame} (default ${defaultPromptMaxTokens(context, model.tokenizer)})`);
  }
  const maxTokens = o.promptMaxTokens === undefined ? defaultPromptMaxTokens(context, model.tokenizer) : o.promptMaxTokens;
  const chars = [o.promptMaxChars, o.maxPromptChars].filter((v): v is number => v !== undefined);
  // Zero-shot scoring: nothing trains, so K only sets how far the prefix cache reaches (the smallest
  // K lets it cover the most layers); the LM head reads the answer position, as a chat model answers.
  const policy = new LlmPolicy({
    model, backend: getBackend(), trainableLayers: 1, head: 'lm', headInput: 'last', seed: 0,
    prompt: {
      ...(o.promptStyle !== undefined && { style: o.promptStyle }),
      ...(maxTokens !== null && { maxTokens }),
      ...(chars.length > 0 && { maxChars: Math.min(...chars) }),
    },
  });
  return policyScorer(policy, o.id ?? spec, {
    ...(o.maxPromptChars !== undefined && { maxPromptChars: o.maxPromptChars }),
    budgetHint: `the budget of /v1/act prompts: serve --prompt-max-tokens ${maxTokens ?? 'none'}, --prompt-max-chars ${o.promptMaxChars ?? 'none'}, --max-prompt-chars ${o.maxPromptChars ?? 'none'}`,
  });
}
