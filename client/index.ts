// The client SDK's entry point (`noirledger/client` once installed; spec/packaging.md).
export * from './noir-client.ts'
export * from './errors.ts'
