-- migrate:up
-- One row per failed login, per subject: SHA-256 of "account:<email>" or "address:<ip>",
-- so no typed-in email or address is kept in clear. Times are epoch milliseconds.
CREATE TABLE login_failures (
  id INTEGER PRIMARY KEY,
  subject BLOB NOT NULL,
  failed_at INTEGER NOT NULL
);
CREATE INDEX login_failures_subject ON login_failures (subject, failed_at);
CREATE INDEX login_failures_time ON login_failures (failed_at);

-- migrate:down
DROP TABLE login_failures;
