// The slice of the WebAssembly JS API we use, typed here because the project's lib settings (es2024 +
// node types) do not declare the WebAssembly global.
export interface WasmMemory {
  readonly buffer: ArrayBuffer
}
export interface WasmInstance {
  readonly exports: Record<string, unknown>
}
export type WasmModule = object
export interface WasmExportDescriptor {
  name: string
  kind: string
}
export interface WasmApi {
  validate(bytes: Uint8Array): boolean
  compile(bytes: Uint8Array): Promise<WasmModule>
  instantiate(module: WasmModule, imports: Record<string, Record<string, unknown>>): Promise<WasmInstance>
  Module: { new (bytes: Uint8Array): WasmModule; exports(module: WasmModule): WasmExportDescriptor[] }
}

export const wasmApi: WasmApi | undefined = (globalThis as { WebAssembly?: WasmApi }).WebAssembly
