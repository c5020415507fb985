/** RFC 6749 §3.2: a parameter sent without a value is treated as omitted. */
export function param (value: string | undefined): string | undefined {
  return value === '' ? undefined : value
}
