// Tests that need something from the machine (Docker, root, network namespaces, QEMU...) call these.
// Where the requirement is missing they skip with the reason; under CI=true a missing requirement is a
// failure, not a skip (CI installs everything the suite needs).
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { findAnvil } from '../../settlement/evm/anvil.ts'

export interface Requirement {
  /** Short name, e.g. "docker". */
  name: string
  /** Undefined when met; otherwise why not. */
  missing(): string | undefined
}

export const underCI = (): boolean => process.env.CI === 'true' || process.env.CI === '1'

const ok = (cmd: string, args: string[]): boolean => spawnSync(cmd, args, { stdio: 'ignore', timeout: 10_000 }).status === 0

export const docker: Requirement = {
  name: 'docker',
  missing: () => (ok('docker', ['info']) ? undefined : 'no Docker daemon answers (install docker.io and start dockerd; see scripts/ci/setup-system.sh)'),
}

export const root: Requirement = {
  name: 'root',
  missing: () => (process.getuid?.() === 0 ? undefined : 'needs root'),
}

export const netns: Requirement = {
  name: 'network namespaces',
  missing: () => {
    if (process.getuid?.() !== 0) return 'network namespaces need root'
    if (!ok('ip', ['netns', 'list'])) return 'the `ip` command (iproute2) is missing or cannot list namespaces'
    return undefined
  },
}

export const bwrap: Requirement = {
  name: 'bubblewrap',
  missing: () =>
    ok('bwrap', ['--dev-bind', '/', '/', '--unshare-net', '--unshare-pid', '--', 'true'])
      ? undefined
      : 'bwrap cannot make network and PID namespaces here (Debian package bubblewrap; needs user or root namespaces)',
}

export const runsc: Requirement = {
  name: 'runsc',
  missing: () => {
    if (process.getuid?.() !== 0) return 'runsc runs sandboxes as root only'
    return ok('runsc', ['--version']) ? undefined : "gVisor's runsc is not installed (Debian package runsc; scripts/ci/setup-system.sh installs it)"
  },
}

export const qemu: Requirement = {
  name: 'qemu',
  missing: () => (ok('qemu-system-x86_64', ['--version']) ? undefined : 'qemu-system-x86_64 is not installed (Debian package qemu-system-x86)'),
}

/** The noir microVM image built with the state-disk modules (virtio_blk, ext4) and e2fsprogs' mke2fs on the host. */
export function microvmStateDisk(imageEnv: string): Requirement {
  return {
    name: 'microvm state disk',
    missing: () => {
      if (!existsSync(imageEnv) || !/^MODULES=.*\bvirtio_blk\b.*\bext4\b/m.test(readFileSync(imageEnv, 'utf8'))) {
        return `${imageEnv} names no virtio_blk/ext4 modules (rebuild the image: scripts/ci/images/microvm.sh)`
      }
      return ok('mke2fs', ['-V']) || ok('/sbin/mke2fs', ['-V']) ? undefined : 'mke2fs is not installed (Debian package e2fsprogs)'
    },
  }
}

export function dockerImage(image: string): Requirement {
  return {
    name: `docker image ${image}`,
    missing: () => docker.missing() ?? (ok('docker', ['image', 'inspect', image]) ? undefined : `local image ${image} is missing (built by scripts/ci/images/)`),
  }
}

export function file(path: string, why: string): Requirement {
  return { name: path, missing: () => (existsSync(path) ? undefined : `${path} is missing (${why})`) }
}

/** Minimal shape of a tap test object, so this module does not depend on tap's types. */
interface TestLike {
  skip(...args: unknown[]): unknown
  fail(message: string): unknown
}

/**
 * Returns true when every requirement is met. Otherwise skips the test with the reasons (outside CI) or
 * fails it (under CI=true), and returns false: the caller returns at once.
 */
export function requireOrSkip(t: TestLike, ...reqs: Requirement[]): boolean {
  const reasons = reqs.map((r) => r.missing()).filter((r): r is string => r !== undefined)
  if (reasons.length === 0) return true
  const why = reasons.join('; ')
  if (underCI()) t.fail(`required under CI=true: ${why}`)
  else t.skip(`skipped: ${why}`)
  return false
}

/** Runs a command and returns its stdout, throwing with stderr on failure (for test set-up). */
export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Anvil (Foundry's local EVM node) from the npm package @foundry-rs/anvil (settlement/evm/anvil.ts). */
export const anvil: Requirement = {
  name: 'anvil',
  missing: () => {
    const found = findAnvil()
    return 'missing' in found ? `${found.missing} (npm install brings it with @foundry-rs/anvil)` : undefined
  },
}

/** Debian's chromium (scripts/ci/setup-system.sh installs it), driven by playwright-core in the browser tests. */
export const CHROMIUM = process.env.NOIR_CHROMIUM ?? '/usr/bin/chromium'
export const chromium: Requirement = {
  name: 'chromium',
  missing: () => (ok(CHROMIUM, ['--version']) ? undefined : `${CHROMIUM} does not run (Debian package chromium; or set NOIR_CHROMIUM)`),
}
