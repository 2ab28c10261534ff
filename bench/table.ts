// Plain-text and Markdown tables and the number formats of the bench (pure; test/bench/report.test.ts).

/** Milliseconds as "812 ms" below 10 s, "12.3 s" from there, "4.2 min" from 10 min; "–" when not finite. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms >= 600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`;
}

/** GFLOP/s of `gflop` done in `ms` (one decimal); "–" when either is not a positive finite number. */
export function fmtRate(gflop: number, ms: number): string {
  return gflop > 0 && ms > 0 && Number.isFinite(gflop) && Number.isFinite(ms) ? (gflop / (ms / 1000)).toFixed(1) : '–';
}

/** ours / torch as "1.23×"; "–" when either side is missing. */
export function fmtRatio(ours: number, torch: number): string {
  return ours > 0 && torch > 0 && Number.isFinite(ours) && Number.isFinite(torch) ? `${(ours / torch).toFixed(2)}×` : '–';
}

export function table(header: string[], rows: string[][], markdown: boolean): string {
  for (const r of rows) {
    if (r.length !== header.length) throw new Error(`table: a row has ${r.length} cells, the header ${header.length}: ${r.join(' | ')}`);
  }
  if (markdown) {
    return [`| ${header.join(' | ')} |`, `|${header.map(() => ' --- ').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  }
  const width = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(width[i])).join('  ').trimEnd();
  return [line(header), width.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}
