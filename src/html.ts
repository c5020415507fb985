const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text made safe for HTML element content and quoted attribute values. */
export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, c => ENTITIES[c]!)
}

/**
 * What an HTML document the service serves (the pages, /docs) adds to the security headers of
 * every response (plugins/security.ts): its links and requests tell no other site where it was.
 */
export const HTML_HEADERS = { 'referrer-policy': 'no-referrer' } as const
