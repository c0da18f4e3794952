// A real local chain for tests (Anvil, from the npm package @foundry-rs/anvil): the Settlement contract and its
// token deployed, a customer account funded with tokens and the contract approved to take them, so a test
// can make deposits naming an account key and mine blocks to confirm them.
import { createPublicClient, createTestClient, createWalletClient, http, type Address, type Hex, type PublicClient } from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import { ANVIL_MNEMONIC, startAnvil } from '../../settlement/evm/anvil.ts'
import { nlcAbi, settlementAbi } from '../../settlement/evm/artifacts.ts'
import { deploySettlement } from '../../settlement/evm/deploy.ts'

/** The token's base units per NLC (18 decimals). */
export const NLC_UNITS = 10n ** 18n

export interface LocalChain {
  rpcUrl: string
  settlement: Address
  /** The block the Settlement contract was created in. */
  startHeight: bigint
  /** Deposits `amount` base units naming `accountKey` (64 hex), from the funded customer. */
  deposit(accountKey: string, amount: bigint): Promise<void>
  mine(blocks: number): Promise<void>
}

export async function localChain(t: { teardown(fn: () => Promise<void> | void): void }): Promise<LocalChain> {
  const anvil = await startAnvil()
  t.teardown(() => anvil.stop())
  const transport = http(anvil.url)
  const client = createPublicClient({ transport, pollingInterval: 20 }) as PublicClient
  const wallet = createWalletClient({ transport, pollingInterval: 20 })
  const test = createTestClient({ mode: 'anvil', transport, pollingInterval: 20 })
  const operator = mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: 0 })
  const customer = mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: 1 })
  const deployed = await deploySettlement(client, wallet, operator, operator.address)
  const send = async (hash: Hex): Promise<void> => {
    const r = await client.waitForTransactionReceipt({ hash })
    if (r.status !== 'success') throw new Error(`${hash} reverted`)
  }
  await send(await wallet.writeContract({ address: deployed.token, abi: nlcAbi, functionName: 'mint', args: [customer.address, 1000n * NLC_UNITS], account: operator, chain: null }))
  await send(await wallet.writeContract({ address: deployed.token, abi: nlcAbi, functionName: 'approve', args: [deployed.settlement, 1000n * NLC_UNITS], account: customer, chain: null }))
  return {
    rpcUrl: anvil.url,
    settlement: deployed.settlement,
    startHeight: deployed.settlementBlock,
    deposit: async (key, amount) => send(await wallet.writeContract({ address: deployed.settlement, abi: settlementAbi, functionName: 'deposit', args: [`0x${key}`, amount], account: customer, chain: null })),
    mine: (blocks) => test.mine({ blocks }),
  }
}
