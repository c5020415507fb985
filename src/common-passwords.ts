import { requireUncached } from './require-uncached.js'

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
 * package (its CommonJS build) is loaded for this and forgotten, so its 57,000 decoded words can
 * be collected; an `import` would keep them for the life of the process.
 */
export function loadCommonPasswords (minLength = 8): SortedWords {
  const { dictionary } = requireUncached<{ dictionary: Record<string, string[]> }>('@zxcvbn-ts/language-common')
  return new SortedWords(dictionary['passwords-common']!.filter(p => p.length >= minLength))
}
