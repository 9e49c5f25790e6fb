-- The app's accounts. A new tenant starts with none: the tenant's user signs
-- up through the app.
CREATE TABLE users (
  id serial PRIMARY KEY,
  username text NOT NULL UNIQUE,
  email text,
  password_hash text,
  first_name text,
  last_name text,
  created_at timestamp NOT NULL DEFAULT now(),
  updated_at timestamp NOT NULL DEFAULT now()
);

-- E-mail addresses are unique regardless of case.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
