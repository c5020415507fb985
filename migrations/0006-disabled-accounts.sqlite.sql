-- migrate:up
-- When an operator disabled the account (epoch milliseconds); NULL: it is not disabled. A disabled
-- account cannot log in; disabling also ends its sessions, so authentication never reads this.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;

-- migrate:down
ALTER TABLE users DROP COLUMN disabled_at;
