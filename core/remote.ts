// The signed remote path to other nodes: the default RemoteEndpoint (core/remote-contract.ts). Its parts live
// in core/remote/: endpoint.ts (the receive pipeline, wiring the rest), envelope-sender.ts (signing, sealed
// batches, hand-off), pending-asks.ts (asks awaiting answers), signature-gate.ts (each sender's envelopes held
// until their checks pass), sealed-stream-receiver.ts (inbound batches and their seals), violators.ts.
export { signedRemote, type RemoteEndpointOptions } from './remote/endpoint.ts'
export { REPLY_BEHAVIOR, ERROR_BEHAVIOR, type ReplyBody } from './remote/answers.ts'
