-- Usernames are unique without regard to case, so "Demo" cannot sit beside "demo".
CREATE UNIQUE INDEX managers_username_lower_idx ON managers (lower(username));
