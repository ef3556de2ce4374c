-- Documents 1..=documents, each at version 1 (a recursive CTE counts them).
WITH RECURSIVE n (i) AS (
    SELECT 1 WHERE :documents >= 1
    UNION ALL
    SELECT i + 1 FROM n WHERE i < :documents
)
INSERT INTO documents (id, title, version) SELECT i, 'draft ' || i, 1 FROM n;
