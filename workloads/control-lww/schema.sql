-- Documents, the same on both engines: the dataset numbers them, and no command adds any.
CREATE TABLE documents (
    id BIGINT PRIMARY KEY,
    title TEXT NOT NULL,
    version BIGINT NOT NULL
);
