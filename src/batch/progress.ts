// The progress of a batch: items done, failures, items per hour and the time left; a bar on a terminal,
// a line per item otherwise (logs, CI).
import cliProgress from 'cli-progress';

/** h:mm:ss (or m:ss). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Throughput and time left from the items finished so far in this run. */
export class Throughput {
  private readonly t0 = performance.now();
  finished = 0;

  constructor(readonly total: number) {}

  /** Items per hour (NaN before the first item finished). */
  get perHour(): number {
    const h = (performance.now() - this.t0) / 3_600_000;
    return this.finished && h > 0 ? this.finished / h : NaN;
  }

  /** Seconds until the remaining items are done at the current rate. */
  get etaSeconds(): number {
    const left = this.total - this.finished;
    return left === 0 ? 0 : (left / this.perHour) * 3600;
  }
}

export interface ProgressOptions {
  enabled: boolean;
  stream?: NodeJS.WriteStream;
}

export class BatchProgress {
  private readonly rate: Throughput;
  private done = 0;
  private failed = 0;
  private readonly bar: cliProgress.SingleBar | null;
  private readonly stream: NodeJS.WriteStream;

  constructor(
    readonly total: number,
    private readonly opts: ProgressOptions,
  ) {
    this.rate = new Throughput(total);
    this.stream = opts.stream ?? process.stderr;
    this.bar =
      opts.enabled && this.stream.isTTY
        ? new cliProgress.SingleBar(
            {
              format: 'batch [{bar}] {value}/{total} | {failed} failed | {rate} items/h | ETA {eta_text} | {current}',
              stream: this.stream,
              hideCursor: true,
            },
            cliProgress.Presets.shades_classic,
          )
        : null;
    this.bar?.start(total, 0, this.payload(''));
  }

  private payload(current: string): Record<string, string | number> {
    const r = this.rate.perHour;
    return {
      failed: this.failed,
      rate: Number.isFinite(r) ? Math.round(r) : '?',
      eta_text: formatDuration(this.rate.etaSeconds),
      current,
    };
  }

  /** Sampling progress of the item being generated. */
  step(id: string, step: number, steps: number): void {
    this.bar?.update(this.done + this.failed, this.payload(`${id}: step ${step}/${steps}`));
  }

  finish(id: string, ok: boolean, seconds: number, error?: string): void {
    if (ok) this.done++;
    else this.failed++;
    this.rate.finished = this.done + this.failed;
    const n = this.done + this.failed;
    if (this.bar) {
      this.bar.update(n, this.payload(ok ? `${id} done` : `${id} failed`));
      return;
    }
    if (!this.opts.enabled) return;
    const r = this.rate.perHour;
    this.stream.write(
      `batch: ${n}/${this.total} (${this.failed} failed) | ${Number.isFinite(r) ? Math.round(r) : '?'} items/h | ETA ${formatDuration(this.rate.etaSeconds)} | ` +
        `${id} ${ok ? `done in ${seconds.toFixed(1)} s` : `FAILED: ${error}`}\n`,
    );
  }

  get itemsPerHour(): number {
    return this.rate.perHour;
  }

  stop(): void {
    this.bar?.stop();
  }
}
