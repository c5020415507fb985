import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import t from 'tap'
import { EnvSchema } from '../src/config.js'
import { build } from './helper.js'

const ROOT = resolve(import.meta.dirname, '..')
const API_MD = join(ROOT, 'docs', 'API.md')
const api = readFileSync(API_MD, 'utf8')

/** The text under a `## ` heading, up to the next one. */
function section (markdown: string, title: string): string {
  const start = markdown.indexOf(`\n## ${title}\n`)
  if (start === -1) throw new Error(`docs/API.md has no "## ${title}" section`)
  const end = markdown.indexOf('\n## ', start + 1)
  return markdown.slice(start, end === -1 ? undefined : end)
}

const headings = (markdown: string) => markdown.split('\n').filter(line => /^#{1,6} /.test(line))

/** `METHOD /path` operations named in backticks in the given lines. */
const operationsIn = (lines: string[]) =>
  lines.flatMap(line => [...line.matchAll(/`(GET|HEAD|POST|PUT|PATCH|DELETE) (\/[^`\s]*)`/g)].map(([, method, path]) => `${method} ${path}`))

t.test('docs/API.md describes every operation of the served OpenAPI document, and nothing that is not served', async t => {
  const app = await build(t, 'sqlite')
  const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<{ paths: Record<string, Record<string, unknown>> }>()
  const served = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map(method => `${method.toUpperCase()} ${path}`))
  t.ok(served.length >= 11, 'the document lists the operations')

  const described = operationsIn(headings(section(api, 'Endpoints')))
  for (const operation of served) t.ok(described.includes(operation), `${operation} has a heading in docs/API.md`)

  // An operation described but not built would be a promise the service does not keep.
  for (const operation of described) {
    const [method, url] = operation.split(' ') as ['GET' | 'POST', string]
    t.ok(app.hasRoute({ method, url: url.replace(/\{(\w+)\}/g, ':$1') }), `${operation} is a route of the service`)
  }
})

t.test('the settings table of docs/API.md lists exactly the variables src/config.ts reads', async t => {
  const rows = section(api, 'Configuration').split('\n').filter(line => line.startsWith('| `'))
  const documented = rows.flatMap(row => [...row.split('|')[1]!.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map(([, name]) => name!))
  t.same([...documented].sort(), Object.keys(EnvSchema.properties).sort())
})

/** Every Markdown file of the repository, outside dependencies and generated output. */
function markdownFiles (dir = ROOT): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry => {
    if (['node_modules', '.git', 'dist', 'data', 'artifacts'].includes(entry.name)) return []
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return markdownFiles(path)
    return entry.name.endsWith('.md') ? [path] : []
  })
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) => heading.replace(/^#+ /, '').toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replaceAll(' ', '-')

t.test('every relative link in the repository\'s documents stays inside it and resolves', async t => {
  const files = markdownFiles()
  t.ok(files.includes(API_MD) && files.includes(join(ROOT, 'README.md')), 'the documents were found')
  for (const file of files) {
    const text = readFileSync(file, 'utf8')
    const name = relative(ROOT, file)
    const targets = [
      ...[...text.matchAll(/\]\(([^)\s]+)\)/g)].map(m => m[1]!),
      ...[...text.matchAll(/^\[[^\]]+\]:\s*(\S+)/gm)].map(m => m[1]!),
      ...[...text.matchAll(/href="([^"]+)"/g)].map(m => m[1]!)
    ]
    for (const target of targets) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue
      const [path, anchor] = target.split('#') as [string, string | undefined]
      const resolved = path === '' ? file : resolve(dirname(file), path)
      t.ok(resolved === ROOT || resolved.startsWith(ROOT + sep), `${name}: ${target} stays inside the repository`)
      t.ok(existsSync(resolved), `${name}: ${target} exists`)
      if (anchor !== undefined && resolved.endsWith('.md') && existsSync(resolved)) {
        t.ok(headings(readFileSync(resolved, 'utf8')).map(slug).includes(anchor), `${name}: #${anchor} is a heading of ${relative(ROOT, resolved)}`)
      }
    }
  }
})
