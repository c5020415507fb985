-- migrate:up
-- Access tokens issued before this instant (epoch milliseconds) are refused: set by logout.
ALTER TABLE users ADD COLUMN tokens_not_before BIGINT NOT NULL DEFAULT 0;

-- Refresh tokens are kept only as SHA-256 hashes. Times are epoch milliseconds.
CREATE TABLE refresh_tokens (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  token_hash BINARY(32) NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  family_id BINARY(16) NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT NULL,
  revoked_at BIGINT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY refresh_tokens_hash_unique (token_hash),
  KEY refresh_tokens_family (family_id),
  KEY refresh_tokens_user (user_id),
  KEY refresh_tokens_expiry (expires_at),
  CONSTRAINT refresh_tokens_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB;

-- migrate:down
DROP TABLE refresh_tokens;
ALTER TABLE users DROP COLUMN tokens_not_before;
