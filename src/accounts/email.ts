/** Emails are trimmed and lower-cased before they are stored or looked up: one account per address. */
export function normaliseEmail (email: string): string {
  return email.trim().toLowerCase()
}
