import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACTION_FALLBACK_NOTE, MAX_REPLY_CHARS, parseAction, type ParsedAction } from '../src/prompt/parse.js';

function accepts(reply: string, action: string, how: string) {
  const r = parseAction(reply);
  assert.deepEqual(r, { ok: true, action, how }, `reply ${JSON.stringify(reply)}`);
}
function rejects(reply: string, reason: RegExp) {
  const r: ParsedAction = parseAction(reply);
  assert.equal(r.ok, false, `reply ${JSON.stringify(reply)} should be rejected, got ${JSON.stringify(r)}`);
  if (!r.ok) assert.match(r.reason, reason, `reply ${JSON.stringify(reply)}`);
}

test('plain JSON, any case of value and key, whitespace, extra fields', () => {
  accepts('{"action": "buy"}', 'buy', 'json');
  accepts('{"action":"sell"}', 'sell', 'json');
  accepts('  \n{ "action" :  "HOLD" }\n ', 'hold', 'json');
  accepts('{"Action": " Buy "}', 'buy', 'json');
  accepts('{"ACTION": "sell", "confidence": 0.8, "reasons": ["a", {"b": 1}]}', 'sell', 'json');
  accepts('{"reason": "momentum is up; action: sell would be wrong", "action": "buy"}', 'buy', 'json');
  accepts('{"action": "\\u0062uy"}', 'buy', 'json');
});

test('lenient JSON: single quotes, unquoted key, bare value, trailing comma (documented)', () => {
  accepts("{'action': 'sell'}", 'sell', 'json');
  accepts('{action: "hold"}', 'hold', 'json');
  accepts('{"action": buy}', 'buy', 'json');
  accepts('{"action": "buy",}', 'buy', 'json');
  accepts("{'action': 'hold', 'why': 'it\\'s flat'}", 'hold', 'json');
});

test('chat end tokens after the answer are ignored', () => {
  accepts('{"action": "buy"}<|im_end|>', 'buy', 'json');
  accepts('{"action": "sell"} <|im_end|>\n<|endoftext|>', 'sell', 'json');
  accepts('Hold<|im_end|>', 'hold', 'word');
});

test('JSON in a code fence', () => {
  accepts('```json\n{"action": "sell"}\n```', 'sell', 'code-fence');
  accepts('Here is my answer:\n```\n{"action": "hold"}\n```\nGood luck.', 'hold', 'code-fence');
  accepts('```JSON\n{ "action": "Buy" }```', 'buy', 'code-fence');
});

test('JSON inside prose; JSON wins over the prose', () => {
  accepts('After weighing it, my answer is {"action": "buy"}.', 'buy', 'json-in-text');
  accepts('I considered selling, but {"action": "hold"} is safer than a sell.', 'hold', 'json-in-text');
  accepts('Analysis {not json} then {"action": "sell"}', 'sell', 'json-in-text');
  accepts('{"action": "buy"} and again {"action": "BUY"}', 'buy', 'json-in-text');
});

test('bare words and labelled lines', () => {
  accepts('Buy', 'buy', 'word');
  accepts('SELL.', 'sell', 'word');
  accepts('  hold!  ', 'hold', 'word');
  accepts('**Buy**', 'buy', 'word');
  accepts('"sell"', 'sell', 'word');
  accepts('`hold`', 'hold', 'word');
  accepts('Action: hold', 'hold', 'word');
  accepts('action = BUY', 'buy', 'word');
  accepts('**Action:** Sell', 'sell', 'word');
  accepts('The trend is up and the news is good.\nFinal answer: buy', 'buy', 'word');
  accepts('Decision: "hold".', 'hold', 'word');
  accepts('Recommendation: sell', 'sell', 'word');
  accepts('Buy. Momentum and news both point up.', 'buy', 'word');
  accepts('Sell - the stock is overbought and I expect it to fall.', 'sell', 'word');
  accepts('Hold\nThe signals are mixed, so hold.', 'hold', 'word');
});

test('ambiguous replies are rejected, never defaulted', () => {
  rejects('buy or sell', /ambiguous: the reply names buy and sell/);
  rejects('Buy. Actually, sell.', /ambiguous/);
  rejects('Action: hold\nI would not buy now.', /ambiguous: the reply names hold and buy/);
  rejects('Buy-and-hold investors would be happy.', /ambiguous/);
  rejects('{"action": "buy"} or maybe {"action": "sell"}', /conflicting actions: buy, sell/);
  rejects('{"action": "buy", "action": "sell"}', /conflicting actions/);
  rejects('```json\n{"action": "hold"}\n```\n{"action": "buy"}', /conflicting actions: hold, buy/);
});

test('illegal JSON actions are rejected with the value', () => {
  rejects('{"action": "strong buy"}', /JSON "action" is "strong buy", which is not one of buy, sell, hold/);
  rejects('{"action": "buy."}', /"buy\."/);
  rejects('{"action": ""}', /JSON "action" is ""/);
  rejects('{"action": "long"}', /"long", which is not one of buy, sell, hold \(synonyms are not mapped\)/);
  rejects('{"action": 1}', /JSON "action" is 1; expected a string/);
  rejects('{"action": null}', /JSON "action" is null; expected a string/);
  rejects('{"action": ["buy"]}', /JSON "action" is \["buy"\]; expected a string/);
  rejects('{"action": true}', /JSON "action" is true/);
  // An illegal value is not rescued by a legal one elsewhere.
  rejects('{"action": "buy"} {"action": "maybe"}', /"maybe", which is not one of/);
});

test('synonyms and prose-only mentions are not guessed', () => {
  rejects('Long', /names no action .*"Long" is not mapped/);
  rejects('short it', /names no action .*"short" is not mapped/);
  rejects('I am bullish.', /"bullish" is not mapped/);
  rejects('I would buy.', /"buy" appears only inside prose/);
  rejects("Don't sell.", /"sell" appears only inside prose/);
  rejects('Sell? No.', /"sell" appears only inside prose/);
  rejects('Hold on, let me think about it.', /"hold" appears only inside prose/);
  rejects('Action: buy now while it is cheap', /"buy" appears only inside prose/);
  rejects('I recommend buying.', /names no action/);
});

test('no action at all, JSON without the key, empty, too long, not text', () => {
  rejects('', /reply is empty/);
  rejects('   \n <|im_end|>', /reply is empty/);
  rejects('{"decision": "buy"}', /^the JSON in the reply has no top-level "action" key, and "buy" appears only inside prose/);
  rejects('{"decision": {"action": "buy"}}', /^the JSON in the reply has no top-level "action" key, and "buy" appears only inside prose/);
  rejects('{"answer": 42}', /^the JSON in the reply has no top-level "action" key, and the reply names no action/);
  rejects('{"why": "buy or sell"}', /^the JSON in the reply has no top-level "action" key, and ambiguous/);
  rejects('The market is uncertain today.', /^the reply names no action/);
  rejects('{"action": "buy"', /^"buy" appears only inside prose/);
  rejects(' '.repeat(10) + 'x'.repeat(MAX_REPLY_CHARS), new RegExp(`replies over ${MAX_REPLY_CHARS} are not read`));
  rejects(42 as unknown as string, /reply is number, not text/);
});

test('adversarial: nesting, unterminated strings, braces inside strings, many braces', () => {
  accepts('{"note": "a } brace and a { brace", "action": "sell"}', 'sell', 'json');
  accepts('{"action": "hold", "x": {"action": "buy"}}', 'hold', 'json'); // nested keys do not count
  rejects('{"action": "buy}', /^"buy" appears only inside prose/);
  rejects('{'.repeat(5000) + '"action": "buy"', /^"buy" appears only inside prose/);
  accepts('{'.repeat(100) + ' {"action": "sell"}', 'sell', 'json-in-text');
  accepts('[{"action": "buy"}]', 'buy', 'json-in-text');
  // A long adversarial reply within the limit finishes quickly.
  const t0 = performance.now();
  parseAction('{"x{'.repeat(Math.floor(MAX_REPLY_CHARS / 4)));
  assert.ok(performance.now() - t0 < 5000);
});

test('deterministic and documented', () => {
  const replies = ['{"action": "buy"}', 'Sell.', 'buy or sell', 'Long'];
  for (const r of replies) assert.deepEqual(parseAction(r), parseAction(r));
  assert.match(ACTION_FALLBACK_NOTE, /never substitutes a default/);
});
