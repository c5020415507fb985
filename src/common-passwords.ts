import { createRequire } from 'node:module'

/**
 * A set of words kept as one sorted, newline-separated string and searched by bisection. For
 * the ~18,000 common passwords that is about a tenth of a MiB of heap, where a Set of them took
 * 1.5 MiB and the package's module, kept loaded, another 1.5.
 */
export class SortedWords {
  private readonly text: string

  /** `words` must not contain a newline. */
  constructor (words: Iterable<string>) {
    // The default sort and the < below both compare UTF-16 code units, so they agree.
    this.text = [...new Set(words)].sort().join('\n')
  }

  has (word: string): boolean {
    const { text } = this
    // [lo, hi) is always a run of whole lines: lo at the start of one, hi just after the last.
    let lo = 0
    let hi = text.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const start = Math.max(lo, text.lastIndexOf('\n', mid - 1) + 1)
      const newline = text.indexOf('\n', start)
      const end = newline === -1 ? text.length : newline
      const line = text.slice(start, end)
      if (word === line) return true
      if (word < line) hi = start
      else lo = end + 1
    }
    return false
  }
}

/**
 * The list's passwords that the length policy would let through (8 characters or more). The
 * package (its CommonJS build) is loaded for this and forgotten: the `require.cache` entries the
 * load added are deleted, and the require that made them goes too (its module lists them as
 * children), so its 57,000 decoded words can be collected. An `import` would keep them for the
 * life of the process.
 */
export function loadCommonPasswords (minLength = 8): SortedWords {
  const require = createRequire(import.meta.url)
  const before = new Set(Object.keys(require.cache))
  try {
    const { dictionary } = require('@zxcvbn-ts/language-common') as { dictionary: Record<string, string[]> }
    return new SortedWords(dictionary['passwords-common']!.filter(p => p.length >= minLength))
  } finally {
    for (const key of Object.keys(require.cache)) if (!before.has(key)) delete require.cache[key]
  }
}
