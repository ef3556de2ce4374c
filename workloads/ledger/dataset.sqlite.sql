-- Accounts 1..=accounts, each with the opening balance (a recursive CTE counts them).
WITH RECURSIVE n (i) AS (
    SELECT 1 WHERE :accounts >= 1
    UNION ALL
    SELECT i + 1 FROM n WHERE i < :accounts
)
INSERT INTO accounts (id, owner, balance)
SELECT i, 'owner ' || i, :opening_balance FROM n;
