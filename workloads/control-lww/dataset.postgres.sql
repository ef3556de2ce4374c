-- Documents 1..=documents, each at version 1.
INSERT INTO documents (id, title, version)
SELECT i, 'draft ' || i, 1 FROM generate_series(1, :documents) AS i;
