export interface Gauge {
  label: string;
  percent: number;
  usedText: string;
  limitText: string;
  note?: string;
}

/** A quota gauge: used against its limit, clamped to 0–100 % (an unlimited quota shows 0 %). */
export function gauge(label: string, used: number, limit: number, fmt: (n: number) => string): Gauge {
  const finite = Number.isFinite(limit) && limit > 0;
  const percent = finite ? Math.min(100, Math.max(0, Math.round((used / limit) * 1000) / 10)) : 0;
  return {
    label,
    percent,
    usedText: fmt(used),
    limitText: finite ? fmt(limit) : 'no limit',
    note: finite && used >= limit ? 'Limit reached: further requests are refused with quota_exceeded until next month.' : undefined,
  };
}
