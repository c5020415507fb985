/**
 * A measurement, not a test: how often an access token just logged out on instance A is still
 * accepted on instance C (another Galera node), with causal reads off and on.
 *
 *   npx tsx test/cluster/stale-reads.ts [round trips, default 300]
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { cluster, freshDatabase, login, logout, me, NODE_PORTS, nodeUrl, ready, signup, startInstance } from './cluster.js'

const ROUNDS = Number(process.argv[2] ?? 300)
await cluster('start')
try {
  for (const causal of ['false', 'true']) {
    await freshDatabase('auth')
    const [a, b, c] = NODE_PORTS.map(port => startInstance(nodeUrl(port), { DATABASE_CAUSAL_READS: causal }))
    try {
      await ready(a!)
      await Promise.all([ready(b!), ready(c!)])
      const email = `stale-${causal}@example.com`
      await signup(a!.url, email)
      let stale = 0
      let ms = 0
      for (let round = 0; round < ROUNDS; round++) {
        const access = (await login(b!.url, email)).body.access_token as string
        await logout(a!.url, access)
        const answer = await me(c!.url, access)
        ms += answer.ms
        if (answer.status !== 401) stale++
        await sleep(2)
      }
      console.log(`DATABASE_CAUSAL_READS=${causal}: ${stale} of ${ROUNDS} reads on C right after a logout on A accepted the token; /users/me took ${(ms / ROUNDS).toFixed(2)} ms on average`)
    } finally {
      await Promise.all([a!, b!, c!].map(i => i.stop()))
    }
  }
} finally {
  await cluster('stop')
}
