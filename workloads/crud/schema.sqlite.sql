-- Profiles on SQLite: INTEGER PRIMARY KEY is the rowid, which numbers new profiles.
CREATE TABLE profiles (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    bio TEXT NOT NULL
);
