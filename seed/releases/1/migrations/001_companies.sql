-- The courier catalogue. The columns the app reads come first, as the app
-- defines them; the rest are the seed's normalised extras.
--
-- App-facing columns hold human-readable values derived from the normalised
-- catalogue (contract_type "Independent Contractor", vehicle_types
-- {"Car","Cargo Van"}), so the app can show them as they are; the *_code
-- columns hold the machine values for filtering, and the *_raw columns keep
-- the source spelling for review.
CREATE TABLE companies (
  id serial PRIMARY KEY,
  name text NOT NULL,
  vehicle_types text[],
  average_pay text,
  service_vertical text[] NOT NULL,
  contract_type text NOT NULL,
  areas_served text[],
  website text,
  contact_email text,
  contact_phone text,
  description text,
  level text,
  is_active boolean NOT NULL DEFAULT true,
  created_at timestamp NOT NULL DEFAULT now(),

  -- The seed's upsert key: stable across catalogue versions.
  slug text NOT NULL UNIQUE,
  contract_type_code text NOT NULL,
  contract_type_raw text NOT NULL,
  vehicle_type_codes text[] NOT NULL DEFAULT '{}',
  vehicles_raw text[] NOT NULL DEFAULT '{}',
  pay_min numeric,
  pay_max numeric,
  pay_unit text,
  pay_currency text,
  website_note text,
  updated_at timestamp NOT NULL DEFAULT now()
);

CREATE INDEX companies_active_contract_type_idx ON companies (contract_type_code) WHERE is_active;
