-- The role the app signs in as (app.contract.DB_APP_USER): it reads and writes the app's rows and calls its
-- functions, and owns nothing, so it cannot drop or alter the schema, create roles, or rewrite the migration
-- history. The migrator (the master user in AWS, postgres locally) stays the owner of every object.

-- Roles belong to the whole cluster: another database's migration, or one running at this moment, may have
-- made it first. No password: in AWS it signs in with IAM tokens only.
DO $$
BEGIN
    CREATE ROLE platform_app LOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- rds_iam exists on RDS and Aurora only: membership makes PostgreSQL take an IAM token, and only a token, as
-- the role's password. Plain PostgreSQL (the local runtime) has no such role and signs the app in as it is.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') THEN
        GRANT rds_iam TO platform_app;
    END IF;
EXCEPTION WHEN unique_violation THEN
    NULL;
END
$$;

-- PostgreSQL before 15 let every role create objects in public; nobody but the owner does here.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO platform_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO platform_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO platform_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO platform_app;
-- The migration history is the migrator's alone.
REVOKE ALL ON schema_migrations FROM platform_app;

-- What later migrations create (as this same migrator) is the app's to use as well.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO platform_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO platform_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO platform_app;

-- Every statement of the app's is bounded by app.contract.OUTBOUND_TIMEOUT_SECONDS. RDS Proxy refuses the
-- `options` startup parameter that carries it locally, so the role carries it, in this database only (another
-- database's migration may set its own at the same moment).
DO $$
BEGIN
    EXECUTE format('ALTER ROLE platform_app IN DATABASE %I SET statement_timeout = %L', current_database(), '3s');
END
$$;
