// Minimal types for `wav-encoder` (the package ships none).
declare module 'wav-encoder' {
  export interface WavAudioData {
    sampleRate: number;
    channelData: Float32Array[];
  }
  export interface WavEncodeOptions {
    /** 8 | 16 | 24 | 32 for PCM (default 16); ignored when `float` is true (32-bit float). */
    bitDepth?: number;
    float?: boolean;
    /** Symmetric PCM scaling (×2^(bits−1) for both signs) instead of the default ×32767 / ×32768. */
    symmetric?: boolean;
  }
  export interface Encode {
    (audioData: WavAudioData, opts?: WavEncodeOptions): Promise<ArrayBuffer>;
    sync(audioData: WavAudioData, opts?: WavEncodeOptions): ArrayBuffer;
  }
  export const encode: Encode;
  const WavEncoder: { encode: Encode };
  export default WavEncoder;
}
