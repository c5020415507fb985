-- migrate:up
-- One row per failed login, per subject: SHA-256 of "account:<email>" or "address:<ip>",
-- so no typed-in email or address is kept in clear. Times are epoch milliseconds.
CREATE TABLE login_failures (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  subject BINARY(32) NOT NULL,
  failed_at BIGINT NOT NULL,
  PRIMARY KEY (id),
  KEY login_failures_subject (subject, failed_at),
  KEY login_failures_time (failed_at)
) ENGINE=InnoDB;

-- migrate:down
DROP TABLE login_failures;
