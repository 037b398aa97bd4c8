CREATE TABLE migrate_accounts (id bigserial PRIMARY KEY, name text NOT NULL);
