-- Session store in the layout connect-pg-simple expects, including its index
-- name, so the app never tries to create the table itself.
CREATE TABLE sessions (
  sid varchar PRIMARY KEY,
  sess jsonb NOT NULL,
  expire timestamp(6) NOT NULL
);

CREATE INDEX "IDX_session_expire" ON sessions (expire);
