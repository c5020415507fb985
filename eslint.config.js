import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'node_modules/**', '.tap/**', 'coverage/**', 'test/artifacts/**']
  }),
  {
    // TypeBox's idiom: a schema and its Static<> type share one name.
    files: ['src/schemas/**'],
    rules: { '@typescript-eslint/no-redeclare': 'off' }
  }
]
