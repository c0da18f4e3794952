// The CLI's client of a node daemon's local API: the one in appliance/daemon/api-client.ts (the gateway drives
// its node with the same client).
export { ApiClient, ApiCallError, NoDaemonError, type ApiClientOptions, type Json } from '../appliance/daemon/api-client.ts'
