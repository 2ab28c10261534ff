export { downloadModel, HubError } from './download.ts';
export type { DownloadEvent, DownloadOptions, DownloadProgress, DownloadResult, DownloadedFile, DownloadStage } from './download.ts';
export { MODELS, MODEL_NAMES, audioxHome, hfEndpoint, hfToken, isModelName, modelDir, modelSpec, resolveUrl } from './models.ts';
export type { ModelName, ModelSpec } from './models.ts';
