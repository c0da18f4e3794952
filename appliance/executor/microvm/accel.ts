// Chooses how QEMU runs guests here: KVM when /dev/kvm opens AND a guest really boots under it, software
// emulation (TCG) otherwise. Opening /dev/kvm is not enough: on PVM hosts (paravirtual KVM, as on these
// machines) QEMU starts, then no stock kernel ever prints a line. So the probe boots the kernel itself
// with no initramfs and waits for its first console line ("Linux version ..."); the answer is cached per
// (QEMU binary, kernel) for the life of the process.
import { spawn } from 'node:child_process'
import { constants, openSync, closeSync, readFileSync } from 'node:fs'

export type Accelerator = 'kvm' | 'tcg'

export interface AcceleratorChoice {
  accel: Accelerator
  /** Why this one (why not KVM, when TCG). */
  reason: string
}

/** QEMU arguments that select the accelerator (and a CPU model that suits it). */
export function accelArgs(accel: Accelerator): string[] {
  // tb-size bounds TCG's translation cache (the default, 1 GiB, would be charged to the node's memory).
  // TCG keeps QEMU's default CPU model: emulating `max` is measurably slower to boot.
  return accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,tb-size=64']
}

/**
 * Kernel parameters a guest needs under TCG. Its TSC ticks at the host's TSC rate, but the guest cannot
 * calibrate it against the emulated PIT when the host is loaded, and then hangs in early boot; giving it
 * the rate (tsc_early_khz) and skipping the delay-loop and timer checks makes boots reliable and faster.
 */
export function tcgKernelParams(): string[] {
  const khz = hostTscKhz()
  return [`tsc_early_khz=${khz}`, 'tsc=reliable', 'no_timer_check', `lpj=${Math.round((khz * 1000) / 250)}`]
}

/** The host's TSC rate in kHz, from /proc/cpuinfo (2 GHz when it cannot be read). */
function hostTscKhz(): number {
  try {
    const m = /^cpu MHz\s*:\s*([\d.]+)/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    const mhz = m ? Number(m[1]) : NaN
    if (Number.isFinite(mhz) && mhz > 100) return Math.round(mhz * 1000)
  } catch {
    // not Linux, or /proc hidden
  }
  return 2_000_000
}

const cache = new Map<string, Promise<AcceleratorChoice>>()

export function detectAccelerator(qemu: string, kernel: string, probeMs = 4000): Promise<AcceleratorChoice> {
  const key = `${qemu}\0${kernel}`
  let p = cache.get(key)
  if (p === undefined) {
    p = probe(qemu, kernel, probeMs)
    cache.set(key, p)
  }
  return p
}

async function probe(qemu: string, kernel: string, probeMs: number): Promise<AcceleratorChoice> {
  try {
    closeSync(openSync('/dev/kvm', constants.O_RDWR))
  } catch (err) {
    return { accel: 'tcg', reason: `/dev/kvm cannot be opened (${(err as NodeJS.ErrnoException).code ?? String(err)})` }
  }
  const booted = await bootsUnderKvm(qemu, kernel, probeMs)
  return booted === true ? { accel: 'kvm', reason: 'a guest kernel booted under KVM' } : { accel: 'tcg', reason: booted }
}

/** true when the kernel prints its first console line under KVM within `probeMs`; otherwise why not. */
function bootsUnderKvm(qemu: string, kernel: string, probeMs: number): Promise<true | string> {
  return new Promise((resolve) => {
    const args = [
      '-M', 'microvm', ...accelArgs('kvm'), '-m', '64', '-smp', '1', '-nodefaults', '-no-user-config',
      '-display', 'none', '-no-reboot', '-serial', 'stdio',
      '-kernel', kernel, '-append', 'console=ttyS0 panic=-1 reboot=t pci=off',
    ]
    const child = spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    let done = false
    const finish = (r: true | string): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      resolve(r)
    }
    const timer = setTimeout(() => finish(`no guest console output under KVM within ${probeMs} ms (e.g. a PVM host)`), probeMs)
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8')
      if (/Linux version/.test(out)) finish(true)
    })
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString('utf8')).slice(-2000)
    })
    child.on('error', (e) => finish(`QEMU could not start: ${e.message}`))
    child.on('exit', (code, signal) => finish(`QEMU under KVM exited (${code ?? signal}) before any console output: ${lastLine(err)}`))
  })
}

const lastLine = (s: string): string => s.trim().split('\n').filter(Boolean).slice(-2).join(' | ') || 'no message'
