-- Profiles 1..=users; then the identity goes on after them.
INSERT INTO profiles (id, name, email, bio)
SELECT i, 'user ' || i, 'user.' || i || '@example.com', ''
FROM generate_series(1, :users) AS i;

SELECT setval(pg_get_serial_sequence('profiles', 'id'), :users + 1, false);
