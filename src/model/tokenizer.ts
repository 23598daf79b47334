// Text <-> token ids, and the chat template that wraps chat messages for the model.
//
// Two implementations behind one interface:
// - 'hf': a Hugging Face tokenizer.json through @huggingface/tokenizers (byte-level BPE for SmolLM2).
//   Special tokens written in the text (<|im_start|>, <|im_end|>, ...) encode to their single ids.
//   encode() adds nothing (no BOS, no post-processor template): the text is the whole input, as with
//   transformers' apply_chat_template(tokenize=True). The chat template is the model's own
//   (tokenizer_config.json's chat_template, rendered with Jinja: chat-template.ts), else ChatML.
// - 'bytes': a built-in byte-level tokenizer for models without a tokenizer (random tiny/small
//   configs): ids 0..2 are <|endoftext|>, <|im_start|>, <|im_end|> (the same ids as SmolLM2), and id
//   3 + b is the byte b of the UTF-8 text. Vocabulary 259. Its chat template is ChatML.
import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import { readJson } from '../util/read-json.js';
import {
  chatTemplateOfConfig, JinjaChatTemplate, renderChatML, specialTokenText,
  END_OF_TEXT, IM_END, IM_START, SMOLLM_DEFAULT_SYSTEM, type ChatMessage,
} from './chat-template.js';

export { END_OF_TEXT, IM_END, IM_START, SMOLLM_DEFAULT_SYSTEM, renderChatML, type ChatMessage } from './chat-template.js';

export interface TextTokenizer {
  readonly kind: 'hf' | 'bytes';
  /** One more than the largest token id (the embedding table needs at least this many rows). */
  readonly vocabSize: number;
  /** The id that ends a generated reply (<|im_end|> for ChatML models). */
  readonly eosId: number;
  /** Which chat template applyChatTemplate renders: the model's own ('model') or the built-in ChatML ('chatml'). */
  readonly chatTemplateKind: 'model' | 'chatml';
  encode(text: string): number[];
  decode(ids: ArrayLike<number>): string;
  /** The id of one token given its string in the vocabulary, or undefined. */
  tokenId(token: string): number | undefined;
  /**
   * The messages as the model's chat template renders them, followed by the start of the assistant's
   * turn when addGenerationPrompt (default true). Without a template of its own: ChatML,
   * `<|im_start|>{role}\n{content}<|im_end|>\n` per message, then `<|im_start|>assistant\n`, and when
   * the first message is not a system message the default system message comes first, as SmolLM2's
   * template does. Contents holding a special token are refused.
   */
  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt?: boolean): string;
}

// ---------------------------------------------------------------------------------------------
// Byte-level tokenizer

const BYTE_SPECIALS = [END_OF_TEXT, IM_START, IM_END] as const;
const BYTE_OFFSET = BYTE_SPECIALS.length;
export const BYTE_VOCAB_SIZE = BYTE_OFFSET + 256;
const SPECIAL_SPLIT = /(<\|endoftext\|>|<\|im_start\|>|<\|im_end\|>)/;

export class ByteTokenizer implements TextTokenizer {
  readonly kind = 'bytes' as const;
  readonly vocabSize = BYTE_VOCAB_SIZE;
  readonly eosId = 2; // <|im_end|>
  readonly chatTemplateKind = 'chatml' as const;
  private readonly enc = new TextEncoder();
  private readonly dec = new TextDecoder('utf-8');

  constructor(private readonly defaultSystem: string = SMOLLM_DEFAULT_SYSTEM) {}

  encode(text: string): number[] {
    const ids: number[] = [];
    const pieces = text.split(SPECIAL_SPLIT);
    for (let p = 0; p < pieces.length; p++) {
      const piece = pieces[p]!;
      if (p % 2 === 1) { ids.push(BYTE_SPECIALS.indexOf(piece as typeof BYTE_SPECIALS[number])); continue; }
      for (const b of this.enc.encode(piece)) ids.push(BYTE_OFFSET + b);
    }
    return ids;
  }

  decode(ids: ArrayLike<number>): string {
    let out = '';
    let bytes: number[] = [];
    const flush = () => { if (bytes.length) { out += this.dec.decode(new Uint8Array(bytes)); bytes = []; } };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= BYTE_VOCAB_SIZE) {
        throw new Error(`token id ${id} at position ${i} is outside the byte-level vocabulary 0..${BYTE_VOCAB_SIZE - 1}`);
      }
      if (id < BYTE_OFFSET) { flush(); out += BYTE_SPECIALS[id]; } else bytes.push(id - BYTE_OFFSET);
    }
    flush();
    return out;
  }

  /** Special tokens by name; a one-byte character (ASCII) by itself; `<0xNN>` for any byte. */
  tokenId(token: string): number | undefined {
    const s = BYTE_SPECIALS.indexOf(token as typeof BYTE_SPECIALS[number]);
    if (s >= 0) return s;
    const hex = /^<0x([0-9A-Fa-f]{2})>$/.exec(token);
    if (hex) return BYTE_OFFSET + parseInt(hex[1]!, 16);
    const b = this.enc.encode(token);
    return b.length === 1 ? BYTE_OFFSET + b[0]! : undefined;
  }

  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt = true): string {
    return renderChatML(messages, addGenerationPrompt, this.defaultSystem);
  }
}

// ---------------------------------------------------------------------------------------------
// Hugging Face tokenizer.json

export interface HfTokenizerOptions {
  /** A chat template that replaces tokenizer_config.json's (the text of a chat_template.jinja file). */
  chatTemplate?: string;
  /** The default system message of the ChatML fallback (default SmolLM2's). */
  defaultSystem?: string;
}

export class HfTokenizer implements TextTokenizer {
  readonly kind = 'hf' as const;
  readonly vocabSize: number;
  readonly eosId: number;
  readonly chatTemplateKind: 'model' | 'chatml';
  private readonly tok: Tokenizer;
  /** The model's own chat template, or undefined (ChatML). */
  private readonly template: JinjaChatTemplate | undefined;
  private readonly defaultSystem: string;
  /** Why the ChatML fallback cannot be used with this tokenizer, or null when it can (undefined: not checked yet). */
  private chatProblem: string | null | undefined;

  /**
   * tokenizerJson: the parsed tokenizer.json; tokenizerConfig: the parsed tokenizer_config.json or {}
   * (eos_token, chat_template and the special tokens the template reads); source: a name for errors
   * (the file path).
   */
  constructor(tokenizerJson: unknown, tokenizerConfig: unknown, private readonly source: string, options: HfTokenizerOptions = {}) {
    if (typeof tokenizerJson !== 'object' || tokenizerJson === null || !('model' in tokenizerJson)) {
      throw new Error(`${source}: not a Hugging Face tokenizer.json (expected a JSON object with a "model" field)`);
    }
    const cfg = (typeof tokenizerConfig === 'object' && tokenizerConfig !== null ? tokenizerConfig : {}) as Record<string, unknown>;
    try {
      this.tok = new Tokenizer(tokenizerJson, cfg);
    } catch (e) {
      throw new Error(`${source}: cannot build the tokenizer: ${(e as Error).message}`);
    }
    let maxId = -1;
    for (const id of this.tok.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;

    // EOS: tokenizer_config's eos_token, else ChatML's end of turn, else <|endoftext|>.
    const eosName = specialTokenText(cfg.eos_token);
    if (eosName !== undefined) {
      const id = this.tok.token_to_id(eosName);
      if (id === undefined) throw new Error(`${source}: eos_token ${JSON.stringify(eosName)} of tokenizer_config.json is not in the vocabulary`);
      this.eosId = id;
    } else {
      const id = this.tok.token_to_id(IM_END) ?? this.tok.token_to_id(END_OF_TEXT);
      if (id === undefined) throw new Error(`${source}: no eos_token in tokenizer_config.json and neither ${IM_END} nor ${END_OF_TEXT} is in the vocabulary`);
      this.eosId = id;
    }
    this.defaultSystem = options.defaultSystem ?? SMOLLM_DEFAULT_SYSTEM;
    const text = options.chatTemplate ?? chatTemplateOfConfig(cfg, source);
    this.template = text === undefined ? undefined : new JinjaChatTemplate(text, cfg, specialTokensOf(tokenizerJson), source);
    this.chatTemplateKind = this.template ? 'model' : 'chatml';
  }

  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: ArrayLike<number>): string {
    const arr = Array.from(ids);
    if (arr.length === 0) return ''; // the library refuses an empty list
    for (let i = 0; i < arr.length; i++) {
      const id = arr[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new Error(`${this.source}: token id ${id} at position ${i} is outside the vocabulary 0..${this.vocabSize - 1}`);
      }
    }
    return this.tok.decode(arr, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  tokenId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt = true): string {
    if (this.template) return this.template.render(messages, addGenerationPrompt);
    if (this.chatProblem === undefined) {
      // The markers must be single tokens, or the model never saw this template.
      this.chatProblem = null;
      for (const m of [IM_START, IM_END]) {
        const id = this.tok.token_to_id(m);
        const ids = this.encode(m);
        if (id === undefined || ids.length !== 1 || ids[0] !== id) {
          this.chatProblem = `${this.source}: ${m} is not a single special token here, so the ChatML template cannot be used (the built-in fallback for models without a chat_template in tokenizer_config.json: give the model its own)`;
          break;
        }
      }
    }
    if (this.chatProblem) throw new Error(this.chatProblem);
    return renderChatML(messages, addGenerationPrompt, this.defaultSystem);
  }
}

/** The contents of tokenizer.json's added tokens marked special. */
function specialTokensOf(tokenizerJson: object): string[] {
  const added = (tokenizerJson as { added_tokens?: unknown }).added_tokens;
  if (!Array.isArray(added)) return [];
  return added
    .filter((t): t is { content: string; special?: unknown } => typeof t === 'object' && t !== null && typeof (t as { content?: unknown }).content === 'string')
    .filter((t) => t.special === true)
    .map((t) => t.content);
}

/**
 * Load tokenizer.json (and tokenizer_config.json when given) from disk; chatTemplatePath: a
 * chat_template.jinja file whose template replaces tokenizer_config.json's.
 */
export function loadHfTokenizer(tokenizerJsonPath: string, tokenizerConfigPath?: string, chatTemplatePath?: string): HfTokenizer {
  const json = readJson(tokenizerJsonPath, 'tokenizer.json');
  const cfg = tokenizerConfigPath ? readJson(tokenizerConfigPath, 'tokenizer_config.json') : {};
  let chatTemplate: string | undefined;
  if (chatTemplatePath !== undefined) {
    try {
      chatTemplate = readFileSync(chatTemplatePath, 'utf8');
    } catch (e) {
      throw new Error(`${chatTemplatePath}: cannot read the chat template: ${(e as Error).message}`);
    }
  }
  return new HfTokenizer(json, cfg, tokenizerJsonPath, chatTemplate === undefined ? {} : { chatTemplate });
}
