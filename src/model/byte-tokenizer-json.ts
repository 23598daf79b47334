/**
 * The built-in byte-level tokenizer (tokenizer.ts: ids 0..2 = <|endoftext|>, <|im_start|>, <|im_end|>,
 * id 3 + b = byte b) written as a Hugging Face tokenizer.json, so that a model pretrained here is a
 * plain HF folder: `transformers`/`tokenizers` and our own HfTokenizer read it and give the same ids.
 *
 * How: a BPE model without merges over the 256 byte symbols of the ByteLevel pre-tokenizer (which maps
 * each byte to one printable character, GPT-2's table), no regex split, and the three specials as
 * added tokens. Without merges every byte is its own token, which is exactly the byte tokenizer.
 */
import { BYTE_VOCAB_SIZE, END_OF_TEXT, IM_END, IM_START } from './tokenizer.js';

/** GPT-2's byte -> printable character table (the ByteLevel pre-tokenizer's alphabet). */
export function byteLevelAlphabet(): string[] {
  const keep = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const out = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep(b) ? b : 256 + extra++);
  return out;
}

/** tokenizer.json (as an object) of the byte-level tokenizer. */
export function byteTokenizerJson(): Record<string, unknown> {
  const specials = [END_OF_TEXT, IM_START, IM_END];
  const vocab: Record<string, number> = {};
  specials.forEach((s, i) => { vocab[s] = i; });
  byteLevelAlphabet().forEach((ch, b) => { vocab[ch] = specials.length + b; });
  if (Object.keys(vocab).length !== BYTE_VOCAB_SIZE) throw new Error('byte tokenizer vocabulary is not 259 distinct entries');
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [],
    },
  };
}

/** tokenizer_config.json for it: ChatML markers, eos, and SmolLM2-style chat template. */
export function byteTokenizerConfigJson(): Record<string, unknown> {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: IM_START,
    eos_token: IM_END,
    pad_token: IM_END,
    unk_token: null,
    model_max_length: 4096,
    clean_up_tokenization_spaces: false,
    // ChatML, SmolLM2-Instruct's template: rendered by the tokenizer (chat-template.ts) as by other tools.
    chat_template: "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
  };
}
