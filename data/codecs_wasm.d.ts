// Types for imagescript's untyped wasm codec modules (imagescript/wasm/node/*.js).
interface Frame {
  width: number;
  height: number;
  /** JPEG only: 0 gray, 1 RGB, 2 CMYK. */
  format: number;
  buffer: Uint8Array;
  framebuffer?: Uint8Array;
}
declare const lib: {
  init(): Promise<{ decode(bytes: Uint8Array, width?: number, height?: number): Frame }>;
};
export default lib;
