/**
 * Reads the action out of a model's reply. It never picks a default: a reply it cannot read with
 * certainty gives { ok: false, reason } and the caller decides (see ACTION_FALLBACK_NOTE).
 *
 * Rules, in order:
 *  0. Trailing chat special tokens (`<|im_end|>`, `<|endoftext|>`, any `<|name|>`) and surrounding
 *     whitespace are removed. Empty replies and replies over MAX_REPLY_CHARS are rejected.
 *  1. JSON. Every `{...}` object in the reply is read with a lenient JSON reader: standard JSON, plus
 *     single-quoted strings, unquoted keys, a bare-word value (`{action: buy}`) and a trailing comma.
 *     Only a top-level key named "action" (any letter case) counts; nested objects are not searched.
 *     If any object has an "action" key, JSON decides and the prose is ignored:
 *       - each "action" value must be a string that, trimmed and lower-cased, is exactly buy, sell or hold
 *         ("strong buy", "long", "buy." and non-strings are rejected);
 *       - all "action" values in the reply (duplicate keys and several objects included) must agree.
 *     `how` is 'json' when the object is the whole reply, 'code-fence' when it sits inside a ``` fence,
 *     'json-in-text' otherwise.
 *  2. Word, only when no JSON "action" exists. The whole-word mentions of buy / sell / hold (any case)
 *     must all name the same action (otherwise the reply is ambiguous), and the reply must have one of
 *     these shapes:
 *       - the action word alone, with optional markdown/quotes and a final . or ! ("Buy", "SELL.", "**hold**");
 *       - a line `Action: hold` (labels: action, decision, answer, final answer, recommendation; ':' or '=');
 *       - a reply that starts with the word followed by punctuation or a dash ("Buy. Momentum is up.").
 *     An action word only inside prose ("I would buy") is rejected: negations make it unsafe to read.
 *  Synonyms (long, short, bullish, exit, ...) are never mapped: their meaning depends on the trading
 *  mode, so mapping them would be a guess. `how` is 'word'.
 */
import { ACTIONS, type Action } from '../env/types.js';

export type ParsedAction =
  | { ok: true; action: Action; how: 'json' | 'json-in-text' | 'code-fence' | 'word' }
  | { ok: false; reason: string };

/** Longer replies are rejected rather than scanned (the policy's answers are a few tokens; API agents cap their output). */
export const MAX_REPLY_CHARS = 20000;

/** How callers must treat a failed parse. */
export const ACTION_FALLBACK_NOTE =
  'parseAction never substitutes a default action. When it returns ok: false, the caller chooses ' +
  'what happens (e.g. an API agent retries or takes "hold" and counts the failure in its run record); ' +
  'the reason string says why the reply was rejected.';

const SYNONYMS = /\b(long|short|bullish|bearish|exit|flat|neutral|wait|close|accumulate|increase|reduce)\b/i;

// ---------------------------------------------------------------------------------------------------
// Lenient JSON object reader. Values other than strings and bare words are skipped, not interpreted.

type Value = { kind: 'string'; text: string } | { kind: 'bare'; text: string } | { kind: 'other'; text: string };
interface LooseObject {
  start: number;
  end: number; // exclusive
  entries: { key: string; value: Value }[];
}

const MAX_DEPTH = 32;

class Reader {
  i: number;
  constructor(
    readonly s: string,
    start: number,
  ) {
    this.i = start;
  }
  ws(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i])) this.i++;
  }
  /** A quoted string at i ('"' or "'"), escapes decoded; null when malformed or unterminated. */
  str(): string | null {
    const q = this.s[this.i];
    if (q !== '"' && q !== "'") return null;
    let out = '';
    for (let j = this.i + 1; j < this.s.length; j++) {
      const c = this.s[j];
      if (c === q) {
        this.i = j + 1;
        return out;
      }
      if (c === '\n' && q === '"') return null;
      if (c === '\\') {
        const e = this.s[++j];
        if (e === undefined) return null;
        if (e === 'u') {
          const hex = this.s.slice(j + 1, j + 5);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) return null;
          out += String.fromCharCode(parseInt(hex, 16));
          j += 4;
        } else {
          out += ({ n: '\n', t: '\t', r: '\r', b: '\b', f: '\f' } as Record<string, string>)[e] ?? e;
        }
      } else out += c;
    }
    return null;
  }
  /** Skip a balanced [...] or {...} value (strings respected). */
  skipNested(depth: number): boolean {
    const open = this.s[this.i];
    const close = open === '[' ? ']' : '}';
    if (depth > MAX_DEPTH) return false;
    this.i++;
    for (;;) {
      this.ws();
      const c = this.s[this.i];
      if (c === undefined) return false;
      if (c === close) {
        this.i++;
        return true;
      }
      if (c === '"' || c === "'") {
        if (this.str() === null) return false;
      } else if (c === '[' || c === '{') {
        if (!this.skipNested(depth + 1)) return false;
      } else if (c === ']' || c === '}') {
        return false;
      } else this.i++;
    }
  }
  value(depth: number): Value | null {
    const c = this.s[this.i];
    if (c === '"' || c === "'") {
      const text = this.str();
      return text === null ? null : { kind: 'string', text };
    }
    if (c === '{' || c === '[') {
      const from = this.i;
      return this.skipNested(depth + 1) ? { kind: 'other', text: this.s.slice(from, this.i) } : null;
    }
    const m = /^[^\s,{}[\]"':]+/.exec(this.s.slice(this.i, this.i + 64));
    if (!m) return null;
    this.i += m[0].length;
    const text = m[0];
    return /^(true|false|null)$/.test(text) || !/^[A-Za-z][A-Za-z_-]*$/.test(text) ? { kind: 'other', text } : { kind: 'bare', text };
  }
  key(): string | null {
    const c = this.s[this.i];
    if (c === '"' || c === "'") return this.str();
    const m = /^[A-Za-z_$][\w$]*/.exec(this.s.slice(this.i, this.i + 64));
    if (!m) return null;
    this.i += m[0].length;
    return m[0];
  }
  /** An object starting at i (s[i] === '{'); null when it is not one. */
  object(): LooseObject | null {
    const start = this.i;
    this.i++;
    const entries: LooseObject['entries'] = [];
    for (;;) {
      this.ws();
      if (this.s[this.i] === '}') {
        this.i++;
        return { start, end: this.i, entries };
      }
      const key = this.key();
      if (key === null) return null;
      this.ws();
      if (this.s[this.i] !== ':') return null;
      this.i++;
      this.ws();
      const value = this.value(1);
      if (value === null) return null;
      entries.push({ key, value });
      this.ws();
      if (this.s[this.i] === ',') this.i++;
      else if (this.s[this.i] !== '}') return null;
    }
  }
}

/** All top-level `{...}` objects in the text, left to right, that the lenient reader accepts. */
function findObjects(text: string): LooseObject[] {
  const out: LooseObject[] = [];
  let i = text.indexOf('{');
  while (i >= 0) {
    const obj = new Reader(text, i).object();
    if (obj) {
      out.push(obj);
      i = text.indexOf('{', obj.end);
    } else i = text.indexOf('{', i + 1);
  }
  return out;
}

/** [start, end) of the contents of every ``` fence. */
function fenceRanges(text: string): [number, number][] {
  const out: [number, number][] = [];
  for (const m of text.matchAll(/```[^\n`]*\n?([\s\S]*?)```/g)) {
    const start = (m.index as number) + m[0].length - 3 - m[1].length;
    out.push([start, start + m[1].length]);
  }
  return out;
}

function describe(v: Value): string {
  return v.kind === 'other' ? v.text.slice(0, 40) : JSON.stringify(v.text.slice(0, 40));
}

function isAction(s: string): s is Action {
  return (ACTIONS as readonly string[]).includes(s);
}

// ---------------------------------------------------------------------------------------------------

export function parseAction(reply: string): ParsedAction {
  if (typeof reply !== 'string') return { ok: false, reason: `reply is ${typeof reply}, not text` };
  if (reply.length > MAX_REPLY_CHARS) {
    return { ok: false, reason: `reply has ${reply.length} characters; replies over ${MAX_REPLY_CHARS} are not read` };
  }
  const text = reply.replace(/(?:\s*<\|[A-Za-z0-9_]+\|>)+\s*$/, '').trim();
  if (text === '') return { ok: false, reason: 'reply is empty' };

  // 1. JSON
  const objects = findObjects(text);
  const withAction = objects.filter((o) => o.entries.some((e) => e.key.toLowerCase() === 'action'));
  if (withAction.length > 0) {
    const found = new Set<Action>();
    for (const o of withAction) {
      for (const e of o.entries) {
        if (e.key.toLowerCase() !== 'action') continue;
        if (e.value.kind === 'other') return { ok: false, reason: `JSON "action" is ${describe(e.value)}; expected a string: buy, sell or hold` };
        const a = e.value.text.trim().toLowerCase();
        if (!isAction(a)) {
          const syn = SYNONYMS.test(a) ? ' (synonyms are not mapped)' : '';
          return { ok: false, reason: `JSON "action" is ${describe(e.value)}, which is not one of buy, sell, hold${syn}` };
        }
        found.add(a);
      }
    }
    if (found.size > 1) return { ok: false, reason: `the reply's JSON gives conflicting actions: ${[...found].join(', ')}` };
    const action = [...found][0];
    const first = withAction[0];
    const how =
      first.start === 0 && first.end === text.length
        ? 'json'
        : fenceRanges(text).some(([s, e]) => first.start >= s && first.end <= e)
          ? 'code-fence'
          : 'json-in-text';
    return { ok: true, action, how };
  }

  // 2. Word
  const mentioned = new Set<Action>();
  for (const m of text.matchAll(/\b(buy|sell|hold)\b/gi)) mentioned.add(m[1].toLowerCase() as Action);
  // Said first in every rejection below when the reply had JSON, but none with an "action" key.
  const noKey = objects.length > 0 ? 'the JSON in the reply has no top-level "action" key, and ' : '';
  if (mentioned.size === 0) {
    const syn = SYNONYMS.exec(text);
    const synNote = syn ? ` ("${syn[1]}" is not mapped: synonyms are not read)` : '';
    return { ok: false, reason: `${noKey}the reply names no action (buy, sell or hold)${synNote}` };
  }
  if (mentioned.size > 1) {
    return { ok: false, reason: `${noKey}ambiguous: the reply names ${[...mentioned].join(' and ')} and has no JSON "action"` };
  }
  const action = [...mentioned][0];
  const bare = text.replace(/^[\s*_`"'>#-]+/, '').replace(/[\s*_`"'.!]+$/, '').toLowerCase();
  const labelled = /^[\s*_>#-]*(?:final\s+)?(?:action|decision|answer|recommendation)[\s*_]*[:=][\s*_`"']*(?:buy|sell|hold)[\s*_`"'.!]*$/im;
  const leading = /^[\s*_`"'>#]*(?:buy|sell|hold)[*_`"']*(?:[.!:;,\n]|\s+[-\u2013\u2014])/i;
  if (bare === action || labelled.test(text) || leading.test(text)) return { ok: true, action, how: 'word' };
  return {
    ok: false,
    reason: `${noKey}"${action}" appears only inside prose; expected JSON {"action": ...}, the word alone, an "Action: ${action}" line or a reply that starts with it`,
  };
}
