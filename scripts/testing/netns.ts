// Several "hosts" on one machine for tests: network namespaces joined by veth pairs on a bridge the lab
// creates, each namespace with its own address on a private /24. `cut(i)` takes a node's link down (a
// partition), `restore(i)` brings it back. `destroy()` removes everything it added (namespaces, bridge,
// the iptables FORWARD rule; STACK.md: with dockerd running, bridged frames pass iptables, policy DROP).
// Needs root and iproute2 (`requireOrSkip(t, netns)` from requirements.ts).
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'

export interface LabNode {
  /** Namespace name. */
  readonly ns: string
  /** Root-side veth (on the bridge): taking it down cuts the node off. */
  readonly veth: string
  /** The node's address inside its namespace (on eth0). */
  readonly ip: string
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

function tryRun(cmd: string, args: string[]): void {
  try {
    sh(cmd, args)
  } catch {
    // best effort on teardown
  }
}

export class NetnsLab {
  readonly id: string
  readonly bridge: string
  readonly subnet: string
  readonly nodes: LabNode[] = []
  #forwardRule = false
  #destroyed = false

  private constructor() {
    this.id = randomBytes(3).toString('hex')
    this.bridge = `nbr${this.id}`
    // a random private /24 so parallel labs do not clash
    this.subnet = `10.231.${randomBytes(1)[0]! % 250}`
  }

  /** Creates a bridge and `n` namespaces on it. On any failure, removes what it made and rethrows. */
  static create(n: number): NetnsLab {
    const lab = new NetnsLab()
    try {
      sh('ip', ['link', 'add', lab.bridge, 'type', 'bridge'])
      sh('ip', ['link', 'set', lab.bridge, 'up'])
      sh('iptables', ['-I', 'FORWARD', '-i', lab.bridge, '-o', lab.bridge, '-j', 'ACCEPT'])
      lab.#forwardRule = true
      for (let i = 0; i < n; i++) lab.#addNode(i)
    } catch (err) {
      lab.destroy()
      throw err
    }
    return lab
  }

  #addNode(i: number): void {
    const ns = `noir-${this.id}-${i}`
    const veth = `nv${this.id}${i}`
    const peer = `np${this.id}${i}`
    const ip = `${this.subnet}.${i + 1}`
    sh('ip', ['netns', 'add', ns])
    this.nodes.push({ ns, veth, ip })
    sh('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', peer])
    sh('ip', ['link', 'set', peer, 'netns', ns])
    sh('ip', ['link', 'set', veth, 'master', this.bridge])
    sh('ip', ['link', 'set', veth, 'up'])
    const inNs = (...args: string[]): string => sh('ip', ['netns', 'exec', ns, 'ip', ...args])
    inNs('link', 'set', 'lo', 'up')
    inNs('link', 'set', peer, 'name', 'eth0')
    inNs('addr', 'add', `${ip}/24`, 'dev', 'eth0')
    inNs('link', 'set', 'eth0', 'up')
  }

  /** The command prefix that runs a program inside node i's namespace. */
  prefix(i: number): string[] {
    return ['ip', 'netns', 'exec', this.node(i).ns]
  }

  node(i: number): LabNode {
    const n = this.nodes[i]
    if (!n) throw new Error(`no lab node ${i}`)
    return n
  }

  /** Takes node i's link down: nothing reaches it or leaves it. */
  cut(i: number): void {
    sh('ip', ['link', 'set', this.node(i).veth, 'down'])
  }

  restore(i: number): void {
    sh('ip', ['link', 'set', this.node(i).veth, 'up'])
  }

  /**
   * A partition between two groups: each node of one side drops every packet from and to the other side
   * (iptables inside its own namespace), while each side still talks within itself. Returns what lifts this
   * partition only; `heal()` lifts all.
   */
  partition(sideA: number[], sideB: number[]): () => void {
    const rules: Array<[string, string[]]> = []
    for (const [from, to] of [[sideA, sideB], [sideB, sideA]] as const) {
      for (const i of from) {
        for (const j of to) {
          rules.push([this.node(i).ns, ['INPUT', '-s', this.node(j).ip, '-j', 'DROP']], [this.node(i).ns, ['OUTPUT', '-d', this.node(j).ip, '-j', 'DROP']])
        }
      }
    }
    for (const [ns, rule] of rules) sh('ip', ['netns', 'exec', ns, 'iptables', '-A', ...rule])
    return () => {
      for (const [ns, rule] of rules) tryRun('ip', ['netns', 'exec', ns, 'iptables', '-D', ...rule])
    }
  }

  /** Lifts every partition (flushes each namespace's filter rules; the namespaces hold no others). */
  heal(): void {
    for (const n of this.nodes) sh('ip', ['netns', 'exec', n.ns, 'iptables', '-F'])
  }

  /**
   * Slows the traffic towards node i: netem's fixed delay (with jitter) where the kernel has it, else a
   * token-bucket rate limit (tbf), whose queue delays packets once the link is busy. Returns which one.
   */
  delay(i: number, ms: number, jitterMs = Math.round(ms / 4)): 'netem' | 'tbf' {
    const dev = this.node(i).veth
    try {
      sh('tc', ['qdisc', 'replace', 'dev', dev, 'root', 'netem', 'delay', `${ms}ms`, `${jitterMs}ms`])
      return 'netem'
    } catch {
      sh('tc', ['qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', '256kbit', 'burst', '16kbit', 'latency', `${Math.max(ms, 50)}ms`])
      return 'tbf'
    }
  }

  /** Removes node i's delay (nothing to remove is fine). */
  undelay(i: number): void {
    tryRun('tc', ['qdisc', 'del', 'dev', this.node(i).veth, 'root'])
  }

  /** Removes the namespaces (and with them the veths), the bridge and the FORWARD rule. Idempotent. */
  destroy(): void {
    if (this.#destroyed) return
    this.#destroyed = true
    for (const n of this.nodes) tryRun('ip', ['netns', 'del', n.ns])
    for (const n of this.nodes) tryRun('ip', ['link', 'del', n.veth])
    tryRun('ip', ['link', 'del', this.bridge])
    if (this.#forwardRule) tryRun('iptables', ['-D', 'FORWARD', '-i', this.bridge, '-o', this.bridge, '-j', 'ACCEPT'])
  }
}
