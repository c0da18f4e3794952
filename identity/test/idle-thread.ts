// A signature thread that starts and never takes a job (identity/test/signature-worker-verify.test.ts): what the
// main thread does when the thread is behind, deterministically.
const forever = new Int32Array(new SharedArrayBuffer(4))
for (;;) Atomics.wait(forever, 0, 0)
