export { downloadModel, downloadModelWithTextEncoders, HubError, textEncodersOf } from './download.ts';
export type { DownloadEvent, DownloadOptions, DownloadProgress, DownloadResult, DownloadedFile, DownloadStage } from './download.ts';
export {
  DEFAULT_T5_MODEL_NAME,
  MODELS,
  MODEL_NAMES,
  TEXT_ENCODERS,
  UnsupportedTextEncoderError,
  audioxHome,
  hfEndpoint,
  hfToken,
  isModelName,
  modelDir,
  modelSpec,
  resolveUrl,
  textEncoderModel,
} from './models.ts';
export type { ModelName, ModelSpec, TextEncoderName } from './models.ts';
