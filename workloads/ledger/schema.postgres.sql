-- The ledger's write model on PostgreSQL: transfers are numbered by an identity column.
CREATE TABLE accounts (
    id BIGINT PRIMARY KEY,
    owner TEXT NOT NULL,
    balance BIGINT NOT NULL CHECK (balance >= 0)
);
CREATE TABLE transfers (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    from_id BIGINT NOT NULL REFERENCES accounts (id),
    to_id BIGINT NOT NULL REFERENCES accounts (id),
    amount BIGINT NOT NULL CHECK (amount > 0)
);
CREATE INDEX transfers_from ON transfers (from_id);
CREATE INDEX transfers_to ON transfers (to_id);
