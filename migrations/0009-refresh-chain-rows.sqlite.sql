-- migrate:up
-- Nothing: SQLite has no stored procedures (the MySQL side of this migration changes the one that
-- rotates refresh-token chains; src/store/sqlite.ts runs the same statements in the process).

-- migrate:down
