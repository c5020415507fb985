import { createRequire } from 'node:module'
import t from 'tap'
import { loadCommonPasswords, SortedWords } from '../src/common-passwords.js'

const { dictionary } = createRequire(import.meta.url)('@zxcvbn-ts/language-common') as { dictionary: Record<string, string[]> }

t.test('SortedWords finds exactly its words', async t => {
  const words = new SortedWords(['delta', 'alpha', 'charlie', 'bravo', 'alpha', 'echo1', 'écho'])
  for (const w of ['alpha', 'bravo', 'charlie', 'delta', 'echo1', 'écho']) t.ok(words.has(w), w)
  for (const w of ['', 'alph', 'alphaa', 'a', 'zulu', 'charlie\ndelta', 'echo', 'Alpha', '0']) t.notOk(words.has(w), JSON.stringify(w))
  t.notOk(new SortedWords([]).has(''), 'an empty set has nothing')
  t.ok(new SortedWords(['only']).has('only'))
})

t.test('the common passwords are every listed one of 8 characters or more, and nothing else', async t => {
  const listed = dictionary['passwords-common']!
  const kept = listed.filter(p => p.length >= 8)
  const common = loadCommonPasswords()
  t.ok(kept.length > 10_000, `${kept.length} of ${listed.length}`)
  t.equal(kept.filter(p => !common.has(p)).length, 0, 'every kept one is found')
  t.equal(listed.filter(p => p.length < 8 && common.has(p)).length, 0, 'the shorter ones are not')
  const sorted = [...kept].sort()
  t.ok(common.has(sorted[0]!), 'the first in order')
  t.ok(common.has(sorted.at(-1)!), 'the last in order')
  t.ok(common.has('password1'))
  t.notOk(common.has('password'.slice(0, 7)), 'a prefix of one')
  t.notOk(common.has('correct horse battery staple 42'))
})

t.test('loading it leaves the package unloaded', async t => {
  const require = createRequire(import.meta.url)
  const path = require.resolve('@zxcvbn-ts/language-common')
  delete require.cache[path]
  loadCommonPasswords()
  t.notOk(path in require.cache, 'not kept in require.cache')
})
