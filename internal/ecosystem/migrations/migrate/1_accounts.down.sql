DROP TABLE migrate_accounts;
