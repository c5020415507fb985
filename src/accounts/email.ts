/** One account per address: `A@X.io` and `a@x.io` are the same. */
export function normaliseEmail (email: string): string {
  return email.trim().toLowerCase()
}
