// A signature thread that fails as it starts (identity/test/signature-worker.test.ts points a SignatureWorker
// at it to show what happens when the real thread is lost).
throw new Error('this signature thread fails on purpose')
