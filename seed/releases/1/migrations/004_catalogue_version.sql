-- Which catalogue this database holds: one row, written by the seed in the
-- same transaction as the companies it describes.
CREATE TABLE catalogue_version (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  version text NOT NULL,
  company_count integer NOT NULL,
  loaded_at timestamptz NOT NULL DEFAULT now()
);
