// Deploys the NLC token and the Settlement contract (local chains and tests; a real network deploys once).
import type { Account, Address, PublicClient, WalletClient } from 'viem'
import { nlcAbi, nlcBytecode, settlementAbi, settlementBytecode } from './artifacts.ts'

export interface Deployed {
  token: Address
  settlement: Address
  /** The block the Settlement contract was created in (where deposits can start). */
  settlementBlock: bigint
}

async function deploy(client: PublicClient, hash: `0x${string}`): Promise<{ address: Address; block: bigint }> {
  const r = await client.waitForTransactionReceipt({ hash })
  if (r.status !== 'success' || !r.contractAddress) throw new Error(`deployment ${hash} failed`)
  return { address: r.contractAddress, block: r.blockNumber }
}

/** Deploys NLC (minter: `deployer`) and Settlement(token, operator). */
export async function deploySettlement(client: PublicClient, wallet: WalletClient, deployer: Account, operator: Address): Promise<Deployed> {
  const token = await deploy(client, await wallet.deployContract({ abi: nlcAbi, bytecode: nlcBytecode, account: deployer, chain: null }))
  const settlement = await deploy(
    client,
    await wallet.deployContract({ abi: settlementAbi, bytecode: settlementBytecode, args: [token.address, operator], account: deployer, chain: null }),
  )
  return { token: token.address, settlement: settlement.address, settlementBlock: settlement.block }
}
