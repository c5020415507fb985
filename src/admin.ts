/**
 * `npm run admin -- <command>` (or `node dist/src/admin.js <command>` once built, as in the
 * Docker image): the operators' command line. See `--help`, and src/admin/cli.ts for the commands.
 */
import { runAdmin } from './admin/cli.js'

process.exitCode = await runAdmin(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  // The CLI's one reading of the clock: every command takes this instant as now.
  now: Date.now()
})
