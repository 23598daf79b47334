/**
 * Generated news headlines for the synthetic market. Each headline reads as positive, neutral or
 * negative news about the asset and, by default, ends with a tag in the INVESTOR-BENCH style, e.g.
 * "ACME wins a multi-year contract with a cloud provider. (Sentiment: positive)". The words and the tag
 * agree; whether the headline is right about the market is decided by the caller (synthetic.ts).
 * Without the tag ("ACME wins a multi-year contract with a cloud provider.") only the words carry the
 * sentiment, so a reader has to understand them.
 */
import type { Rng } from '../util/rng.js';

export type Sentiment = 'positive' | 'neutral' | 'negative';
export const SENTIMENTS: readonly Sentiment[] = ['positive', 'neutral', 'negative'];

const TEMPLATES: Record<Sentiment, readonly string[]> = {
  positive: [
    '{A} shares climb as analysts raise their price targets',
    '{A} reports stronger-than-expected quarterly {metric}',
    'Institutional investors add to their stakes in {A}',
    '{A} wins a multi-year contract with {partner}',
    '{A} announces a larger share buyback program',
    'Demand for {A} {product} outpaces supply, management says',
    '{broker} upgrades {A} to buy, citing improving {metric}',
    '{A} raises its full-year outlook on strong {product} sales',
  ],
  neutral: [
    '{A} to present at {conference} next month',
    '{A} names a new head of investor relations',
    '{A} holds its annual shareholder meeting',
    '{broker} keeps its rating on {A} unchanged',
    '{A} confirms the date of its next earnings call',
    '{A} completes a previously announced debt refinancing',
    '{A} opens a new regional office',
    'Trading in {A} shares is in line with the sector',
  ],
  negative: [
    '{A} shares slide after a downgrade by {broker}',
    '{A} misses {metric} estimates and cuts guidance',
    'Regulators open an inquiry into {A} {product} business',
    '{A} loses a major contract to a rival bidder',
    'Executives sell {A} stock as {product} sales slow',
    'Supply problems delay the launch of new {A} {product}',
    '{A} warns that weak demand will weigh on {metric}',
    'Short sellers target {A} over rising costs',
  ],
};

const FILL: Record<string, readonly string[]> = {
  metric: ['revenue', 'earnings', 'margins', 'cash flow', 'subscriber growth'],
  partner: ['a large retailer', 'a government agency', 'a European carmaker', 'a cloud provider', 'a hospital group'],
  product: ['software', 'hardware', 'services', 'devices', 'subscription'],
  broker: ['a major bank', 'an independent research firm', 'a large brokerage', 'a boutique analyst'],
  conference: ['an industry conference', 'an investor day', 'a technology summit'],
};

/**
 * One headline of the given sentiment about `asset`, ending with its `(Sentiment: ...)` tag when `tag` is
 * true (the default). The Rng draws are the same either way (the tag is appended after all of them), so
 * a stream gives the same words with or without tags.
 */
export function makeHeadline(rng: Rng, asset: string, sentiment: Sentiment, tag = true): string {
  const templates = TEMPLATES[sentiment];
  const template = templates[rng.int(templates.length)]!;
  const text = template.replace(/\{(\w+)\}/g, (_m, key: string) => {
    if (key === 'A') return asset;
    const choices = FILL[key]!;
    return choices[rng.int(choices.length)]!;
  });
  return tag ? `${text}. (Sentiment: ${sentiment})` : `${text}.`;
}

/**
 * The sentiment tag at the end of a news item, as written by INVESTOR-BENCH ("(Sentiment: positive)",
 * also "(sentiment:positive)") and by makeHeadline; null when there is none.
 */
export function sentimentTag(text: string): Sentiment | null {
  const m = /\(\s*sentiment\s*:\s*(positive|neutral|negative)\s*\)\s*$/i.exec(text);
  return m ? (m[1]!.toLowerCase() as Sentiment) : null;
}
