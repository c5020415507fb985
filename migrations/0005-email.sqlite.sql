-- migrate:up
-- When the account proved it receives mail at its address (epoch milliseconds); NULL: not yet.
ALTER TABLE users ADD COLUMN email_verified_at INTEGER;

-- Password-reset and email-verification tokens, kept only as SHA-256 hashes. A token is spent
-- (used_at) when it is used or when a newer one of its purpose supersedes it; rows stay an hour
-- after they expire, as they count against the hourly email limit. Times in epoch milliseconds.
CREATE TABLE account_tokens (
  id INTEGER PRIMARY KEY,
  token_hash BLOB NOT NULL,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  purpose TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);
CREATE UNIQUE INDEX account_tokens_hash_unique ON account_tokens (token_hash);
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose, created_at);
CREATE INDEX account_tokens_expiry ON account_tokens (expires_at);

-- Messages waiting for the background sender. A row is claimed (claim_id, claimed_until) by one
-- instance with a conditional UPDATE, deleted once the SMTP server accepted it, and otherwise
-- tried again at next_attempt_at until expires_at (when its link stops working anyway). The
-- bodies hold the link, so a row lives only until it is sent.
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY,
  user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
  recipient TEXT NOT NULL,
  subject TEXT NOT NULL,
  text_body TEXT NOT NULL,
  html_body TEXT NOT NULL,
  link TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  claim_id BLOB,
  claimed_until INTEGER,
  last_error TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at);
CREATE INDEX outbox_claim ON outbox (claim_id);
CREATE INDEX outbox_expiry ON outbox (expires_at);

-- migrate:down
DROP TABLE outbox;
DROP TABLE account_tokens;
ALTER TABLE users DROP COLUMN email_verified_at;
