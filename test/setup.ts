// Every test file runs on one initialised backend (AUDIOX_BACKEND or the default order: wasm here).
import { initBackend } from '../src/backend/index.ts';

await initBackend();
