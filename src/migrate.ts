/**
 * `npm run migrate -- up|down|pending|executed`: the migrations, outside the server, on the
 * database that DATABASE_URL names.
 */
import { ConfigError, loadConfig } from './config.js'
import { createMigrator } from './migrator.js'
import { openDatabase } from './store/open.js'

const COMMANDS = ['up', 'down', 'pending', 'executed'] as const
type Command = typeof COMMANDS[number]

const command = process.argv[2] as Command
if (!COMMANDS.includes(command)) {
  console.error(`usage: npm run migrate -- ${COMMANDS.join('|')}`)
  process.exit(2)
}

let database
try {
  // The secret is not needed to migrate: a placeholder keeps the config check from asking for it.
  database = loadConfig({ JWT_SECRET: 'x'.repeat(32), ...process.env }).database
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  console.error(err.message)
  process.exit(1)
}

const { target, close } = openDatabase(database)

const migrator = createMigrator(target, { info: message => console.log(message) })
try {
  const names = await migrator[command]()
  if (command === 'pending' || command === 'executed') console.log(names.length === 0 ? `(none ${command})` : names.join('\n'))
  else if (names.length === 0) console.log(`nothing to migrate ${command}`)
} catch (err) {
  console.error(`migrate ${command} failed: ${(err as Error).message}`)
  process.exitCode = 1
} finally {
  await close()
}
