#!/usr/bin/env bash
# The tests whose outcome depends on time, run with the apps' clock ten years before and ten
# years after the real date: the service reads only its injected clock, so they pass the same.
set -euo pipefail
cd "$(dirname "$0")/.."
files=(test/routes/sessions.test.ts test/routes/login-limits.test.ts test/routes/token.test.ts
  test/routes/me.test.ts test/routes/well-known.test.ts test/plugins/rate-limit.test.ts
  test/routes/password-reset.test.ts test/routes/email-verification.test.ts test/plugins/mailer.test.ts
  test/plugins/security-events.test.ts)
for days in -3652 3652; do
  echo "== TEST_CLOCK_SHIFT_DAYS=$days"
  TEST_CLOCK_SHIFT_DAYS=$days npx tap "${files[@]}" "$@"
done
