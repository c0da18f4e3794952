// The microvm executor: QEMU `-M microvm` guests (spec/microvm.md).
export { MicrovmExecutor, type MicrovmExecutorInit } from './microvm-executor.ts'
export { defaultMicrovmImage, imagesRoot, type MicrovmImage } from './image.ts'
export { detectAccelerator, type Accelerator, type AcceleratorChoice } from './accel.ts'
export { AcceleratorUnavailableError, MicrovmBootError, MicrovmImageNotFoundError } from './errors.ts'
export { QmpClient, incomingArgs, resumeVm, saveVmState } from './vm-state.ts'
export { VmStateError } from './errors.ts'
