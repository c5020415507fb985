/**
 * What a causal read costs on a Galera node: the service's token-check read (a user by primary
 * key), with and without `SET STATEMENT wsrep_sync_wait = 1 FOR`, in alternating blocks so that
 * a machine whose load drifts weighs on both alike. Loopback only.
 *
 *   npx tsx bench/causal-reads.ts mysql://root@127.0.0.1:3320 [seconds per block, default 3]
 */
import mysql from 'mysql2/promise'

const url = process.argv[2] ?? 'mysql://root@127.0.0.1:3320'
const blockMs = Number(process.argv[3] ?? 3) * 1000
const BLOCKS = 4
const CONNECTIONS = [1, 16]
const READ = 'SELECT id, email, password_hash, created_at, tokens_not_before FROM users WHERE id = ?'

const admin = await mysql.createConnection({ uri: url })
const database = `causal_bench_${process.pid}`
await admin.query(`CREATE DATABASE ${database}`)
try {
  await admin.query(`CREATE TABLE ${database}.users (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email VARCHAR(254) NOT NULL, password_hash VARCHAR(255) NOT NULL, created_at DATETIME(3) NOT NULL,
    tokens_not_before BIGINT NOT NULL DEFAULT 0) ENGINE=InnoDB`)
  await admin.query(`INSERT INTO ${database}.users (email, password_hash, created_at) VALUES ${
    Array.from({ length: 100 }, (_, i) => `('u${i}@example.com', 'x', NOW(3))`).join(', ')}`)

  const rows: string[] = []
  for (const connections of CONNECTIONS) {
    const pool = mysql.createPool({ uri: `${url.replace(/\/+$/, '')}/${database}`, connectionLimit: connections })
    const totals = { plain: { n: 0, ms: 0, lat: [] as number[] }, causal: { n: 0, ms: 0, lat: [] as number[] } }
    for (let block = 0; block < BLOCKS * 2; block++) {
      const kind = block % 2 === 0 ? 'plain' : 'causal'
      const sql = kind === 'causal' ? `SET STATEMENT wsrep_sync_wait = 1 FOR ${READ}` : READ
      const started = performance.now()
      await Promise.all(Array.from({ length: connections }, async () => {
        while (performance.now() - started < blockMs) {
          const t0 = performance.now()
          await pool.execute(sql, [1 + Math.floor(Math.random() * 100)])
          totals[kind].lat.push(performance.now() - t0)
          totals[kind].n++
        }
      }))
      totals[kind].ms += performance.now() - started
    }
    await pool.end()
    for (const kind of ['plain', 'causal'] as const) {
      const { n, ms, lat } = totals[kind]
      lat.sort((a, b) => a - b)
      const at = (q: number) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]!.toFixed(2)
      rows.push(`| ${kind === 'causal' ? 'wsrep_sync_wait = 1' : 'plain read'} | ${connections} | ${Math.round(n / (ms / 1000)).toLocaleString('en')} | ${at(0.5)} | ${at(0.99)} |`)
    }
  }
  console.log(`${url}, ${BLOCKS} alternating blocks of ${blockMs / 1000} s each\n`)
  console.log('| read | connections | reads/s | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: | ---: |')
  console.log(rows.join('\n'))
} finally {
  await admin.query(`DROP DATABASE ${database}`)
  await admin.end()
}
