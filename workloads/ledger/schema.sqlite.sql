-- The ledger's write model on SQLite: INTEGER PRIMARY KEY is the rowid, which numbers
-- transfers by itself.
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    balance BIGINT NOT NULL CHECK (balance >= 0)
);
CREATE TABLE transfers (
    id INTEGER PRIMARY KEY,
    from_id BIGINT NOT NULL REFERENCES accounts (id),
    to_id BIGINT NOT NULL REFERENCES accounts (id),
    amount BIGINT NOT NULL CHECK (amount > 0)
);
CREATE INDEX transfers_from ON transfers (from_id);
CREATE INDEX transfers_to ON transfers (to_id);
