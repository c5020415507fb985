import { createRequire } from 'node:module'

/**
 * Requires a CommonJS package and forgets it, so that once the caller drops the exports, the
 * package and everything its load added can be collected. Resolved from `src/`, as a top-level
 * dependency is.
 */
export function requireUncached<T> (id: string): T {
  // Made per call: its module lists the loaded ones as children, so one kept would keep them.
  const require = createRequire(import.meta.url)
  const before = new Set(Object.keys(require.cache))
  try {
    return require(id) as T
  } finally {
    for (const [key, module] of Object.entries(require.cache)) {
      if (before.has(key)) continue
      delete require.cache[key]
      // A module that something global still reaches (graceful-fs hangs its queue on
      // `globalThis`) would otherwise keep its parent, that one its own, and so the whole graph.
      if (module !== undefined) module.parent = undefined
    }
  }
}
