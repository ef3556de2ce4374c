-- Accounts 1..=accounts, each with the opening balance.
INSERT INTO accounts (id, owner, balance)
SELECT i, 'owner ' || i, :opening_balance
FROM generate_series(1, :accounts) AS i;
