// Times loadModel phase by phase for a model under AUDIOX_HOME (e.g. the one bench/fullsize-smoke.ts lays out).
//   AUDIOX_HOME=/tmp/audiox-fullsize AUDIOX_BACKEND=tensorflow npx tsx bench/load-profile.ts AudioX
import { initBackend } from '../src/backend/index.ts';
import { loadModel } from '../src/pipeline/load.ts';

const name = process.argv[2] ?? 'AudioX';
await initBackend();
const t0 = performance.now();
const m = await loadModel(name);
const ms = performance.now() - t0;
const rss = process.resourceUsage().maxRSS * 1024;
console.log(JSON.stringify({ name, loadMs: Math.round(ms), maxRssGiB: +(rss / 2 ** 30).toFixed(2) }));
m.dispose();
