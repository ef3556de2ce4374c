-- Profiles 1..=users (a recursive CTE counts them).
WITH RECURSIVE n (i) AS (
    SELECT 1 WHERE :users >= 1
    UNION ALL
    SELECT i + 1 FROM n WHERE i < :users
)
INSERT INTO profiles (id, name, email, bio)
SELECT i, 'user ' || i, 'user.' || i || '@example.com', '' FROM n;
