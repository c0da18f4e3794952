// Every `noir` subcommand, in the order `noir --help` lists them. Add a command: write
// cli/commands/<name>.ts exporting a `Command` (or several) and list it here.
import type { Command } from '../command.ts'
import { idCommands } from './id.ts'
import { capCommands } from './cap.ts'

export const commands: Command[] = [...idCommands, ...capCommands]
