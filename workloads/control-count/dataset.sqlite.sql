-- Pages 1..=pages, and views spread over them (the rowid numbers the views, and new ones
-- after them).
WITH RECURSIVE n (i) AS (
    SELECT 1 WHERE :pages >= 1
    UNION ALL
    SELECT i + 1 FROM n WHERE i < :pages
)
INSERT INTO pages (id, title) SELECT i, 'page ' || i FROM n;

WITH RECURSIVE n (i) AS (
    SELECT 1 WHERE :views >= 1
    UNION ALL
    SELECT i + 1 FROM n WHERE i < :views
)
INSERT INTO views (page_id) SELECT 1 + (i - 1) % :pages FROM n;
