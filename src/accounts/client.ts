/** Longer user agents are cut: a header may be up to 16 KiB, a person reads the start. */
export const MAX_USER_AGENT = 256
const MAX_IP = 64

/** At most `max` code points, so a cut never splits a character. */
function cut (value: string, max: number): string {
  if (value.length <= max) return value
  return Array.from(value.slice(0, max * 2)).slice(0, max).join('')
}

/** Who is asking, as sessions and security events keep it. */
export interface ClientInfo {
  ip: string | null
  userAgent: string | null
}

export function clientInfo (request?: { ip: string, headers: { 'user-agent'?: string } }): ClientInfo {
  if (request === undefined) return { ip: null, userAgent: null }
  const userAgent = request.headers['user-agent']
  return {
    ip: cut(request.ip, MAX_IP),
    userAgent: userAgent === undefined || userAgent === '' ? null : cut(userAgent, MAX_USER_AGENT)
  }
}
