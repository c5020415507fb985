import type { SecurityEvent } from '../store/store.js'
/** What the security-events log records, as `GET /users/me/events` names it. */
export const SECURITY_EVENT_TYPES = [
  'signup',
  'login',
  'login_failed',
  'locked',
  'refresh_reused',
  'logout',
  'session_revoked',
  'password_changed',
  'password_reset_requested',
  'password_reset',
  'email_verified',
  'admin_disabled',
  'admin_enabled',
  'admin_sessions_ended',
  'admin_email_verified'
] as const

export type SecurityEventType = typeof SECURITY_EVENT_TYPES[number]

/** How many events `GET /users/me/events` answers with, newest first. */
export const RECENT_EVENTS = 50

/** An event as `GET /users/me/events` and `npm run admin -- events` show it. */
export function eventJson ({ type, at, ip, userAgent }: SecurityEvent) {
  return { type, at: new Date(at).toISOString(), ip, user_agent: userAgent }
}
