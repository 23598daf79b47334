/**
 * The paper's evaluation protocol as data: which file each asset comes from, its train ("warm-up")
 * and test windows (INVESTOR-BENCH's, see the shared data README), and its annualisation convention.
 * Paths are relative to a data directory given at run time (never built in).
 */
export interface ProtocolAsset {
  asset: string;
  /** Path relative to the data directory. */
  file: string;
  format: 'investorbench' | 'yahoo';
  annualization: 'stock' | 'crypto';
  train: { start: string; end: string };
  test: { start: string; end: string };
  /** Why this source (e.g. TSLA has no INVESTOR-BENCH file, so its prices come from Yahoo without news). */
  note?: string;
}

const EQUITY_TRAIN = { start: '2020-07-01', end: '2020-09-30' };
const EQUITY_TEST = { start: '2020-10-01', end: '2021-05-05' };

export const PAPER_PROTOCOL: ProtocolAsset[] = [
  { asset: 'MSFT', file: 'investorbench/msft.json', format: 'investorbench', annualization: 'stock', train: EQUITY_TRAIN, test: EQUITY_TEST },
  { asset: 'JNJ', file: 'investorbench/jnj.json', format: 'investorbench', annualization: 'stock', train: EQUITY_TRAIN, test: EQUITY_TEST },
  { asset: 'UVV', file: 'investorbench/uvv.json', format: 'investorbench', annualization: 'stock', train: EQUITY_TRAIN, test: EQUITY_TEST },
  { asset: 'HON', file: 'investorbench/hon.json', format: 'investorbench', annualization: 'stock', train: EQUITY_TRAIN, test: EQUITY_TEST },
  {
    asset: 'TSLA', file: 'yahoo/TSLA.csv', format: 'yahoo', annualization: 'stock', train: EQUITY_TRAIN, test: EQUITY_TEST,
    note: 'prices only (Adj Close): no news file exists for TSLA',
  },
  {
    asset: 'BTC', file: 'investorbench/btc.json', format: 'investorbench', annualization: 'crypto',
    train: { start: '2023-02-11', end: '2023-04-04' }, test: { start: '2023-04-05', end: '2023-11-05' },
  },
];

/** The protocol entries for a list of asset names (case-insensitive); unknown names are an error listing the known ones. */
export function protocolAssets(names: string[] | undefined): ProtocolAsset[] {
  if (!names || names.length === 0) return PAPER_PROTOCOL;
  return names.map((n) => {
    const a = PAPER_PROTOCOL.find((p) => p.asset.toLowerCase() === n.trim().toLowerCase());
    if (!a) throw new Error(`unknown asset ${JSON.stringify(n)} for the paper protocol; known: ${PAPER_PROTOCOL.map((p) => p.asset).join(', ')}`);
    return a;
  });
}
