// Every `noir` subcommand, in the order `noir --help` lists them. Add a command: write
// cli/commands/<name>.ts exporting a `Command` (or several) and list it here.
import type { Command } from '../command.ts'

export const commands: Command[] = []
