// Ctrl-C / SIGTERM for commands that write files through temp files (convert, download): delete the
// unfinished temp files and exit at once. A download's resumable `.part` is kept on purpose.
import { removePendingTempFiles } from '../io/safetensors.ts';

/**
 * Installs the handlers until the returned function is called; `before` runs first (e.g. to stop a
 * progress bar). Exit codes: 130 (SIGINT), 143 (SIGTERM).
 */
export function cleanUpOnInterrupt(what: string, before?: () => void): () => void {
  const onSignal = (sig: NodeJS.Signals) => {
    before?.();
    const removed = removePendingTempFiles();
    process.stderr.write(`\n${what} interrupted (${sig})${removed.length ? `; removed ${removed.join(', ')}` : ''}\n`);
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}
