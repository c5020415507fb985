-- migrate:up
-- When the account proved it receives mail at its address (epoch milliseconds); NULL: not yet.
ALTER TABLE users ADD COLUMN email_verified_at BIGINT NULL;

-- Password-reset and email-verification tokens, kept only as SHA-256 hashes. A token is spent
-- (used_at) when it is used or when a newer one of its purpose supersedes it; rows stay an hour
-- after they expire, as they count against the hourly email limit. Times in epoch milliseconds.
CREATE TABLE account_tokens (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  token_hash BINARY(32) NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  purpose VARCHAR(32) NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY account_tokens_hash_unique (token_hash),
  KEY account_tokens_user (user_id, purpose, created_at),
  KEY account_tokens_expiry (expires_at),
  CONSTRAINT account_tokens_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB;

-- Messages waiting for the background sender. A row is claimed (claim_id, claimed_until) by one
-- instance with a conditional UPDATE, deleted once the SMTP server accepted it, and otherwise
-- tried again at next_attempt_at until expires_at (when its link stops working anyway). The
-- bodies hold the link, so a row lives only until it is sent.
CREATE TABLE outbox (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  user_id BIGINT UNSIGNED NULL,
  recipient VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  subject VARCHAR(255) CHARACTER SET utf8mb4 NOT NULL,
  text_body TEXT CHARACTER SET utf8mb4 NOT NULL,
  html_body TEXT CHARACTER SET utf8mb4 NOT NULL,
  link VARCHAR(2048) NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  attempts INT NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL,
  claim_id BINARY(16) NULL,
  claimed_until BIGINT NULL,
  last_error VARCHAR(255) NULL,
  PRIMARY KEY (id),
  KEY outbox_due (next_attempt_at),
  KEY outbox_claim (claim_id),
  KEY outbox_expiry (expires_at),
  CONSTRAINT outbox_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- migrate:down
DROP TABLE outbox;
DROP TABLE account_tokens;
ALTER TABLE users DROP COLUMN email_verified_at;
