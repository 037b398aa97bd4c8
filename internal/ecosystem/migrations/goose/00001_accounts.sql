-- +goose Up
CREATE TABLE goose_accounts (id bigserial PRIMARY KEY, name text NOT NULL);

-- +goose Down
DROP TABLE goose_accounts;
