#!/bin/sh
# QCAT's own PostgreSQL roles, made when the PostgreSQL container initialises its data folder
# (docker-compose.yml mounts this file in /docker-entrypoint-initdb.d/; it runs before
# 10-monitoring-roles.sh). Safe to run again. Neither role is a superuser (ADR 015):
#
#   qcat_owner  owns the database and the event log's tables; `qcat migrate` logs in as it (the
#               compose service `migrate`). Nothing else does.
#   qcat_app    what `qcat serve` logs in as: reads and appends to the log and writes the
#               bookkeeping tables (no DDL on them), and owns the read side it rebuilds itself —
#               the projections' schemas, the views in qcat_read, qcat_private (API keys with their
#               hashes, never granted to anyone), market data, the engine's snapshots — and the
#               restore drill's scratch database.
#
# Environment: POSTGRES_USER (a superuser to run this as), POSTGRES_DB (QCAT's database),
# QCAT_PG_OWNER_PASSWORD, QCAT_PG_APP_PASSWORD; optionally QCAT_PG_OWNER, QCAT_PG_APP and
# QCAT_PG_DRILL_DB to rename them. psql's own PG* variables say where to connect.
set -eu

: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${POSTGRES_DB:?POSTGRES_DB is required}"
: "${QCAT_PG_OWNER_PASSWORD:?QCAT_PG_OWNER_PASSWORD is required (qcat migrate logs in with it)}"
: "${QCAT_PG_APP_PASSWORD:?QCAT_PG_APP_PASSWORD is required (qcat serve logs in with it)}"

owner="${QCAT_PG_OWNER:-qcat_owner}"
app="${QCAT_PG_APP:-qcat_app}"
drill="${QCAT_PG_DRILL_DB:-qcat_restore_drill}"

psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 \
  --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v database="$POSTGRES_DB" -v owner="$owner" -v app="$app" -v drill="$drill" \
  -v owner_password="$QCAT_PG_OWNER_PASSWORD" -v app_password="$QCAT_PG_APP_PASSWORD" <<'SQL'
SET client_min_messages = warning;
SELECT format('CREATE ROLE %I LOGIN', :'owner')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'app')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app') \gexec
ALTER ROLE :"owner" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'owner_password';
ALTER ROLE :"app" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'app_password';

-- The owner owns the database, so the schema public (owned by pg_database_owner) is its own.
ALTER DATABASE :"database" OWNER TO :"owner";
-- CREATE: the read side makes a schema per projection generation (and qcat_backtest).
GRANT CONNECT, TEMPORARY, CREATE ON DATABASE :"database" TO :"app";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app";
-- The log and its bookkeeping tables, now and whatever a later migration adds: rows only.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO :"app";
-- The schemas the owner's migrations make beside the log (qcat_market, qcat_engine,
-- qcat_backtest: ADR 028), now and later: used and written, rows only. (Made by the application
-- itself before ADR 028, they stay its own where they exist.)
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" GRANT USAGE ON SCHEMAS TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner"
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
SELECT format('GRANT USAGE ON SCHEMA %I TO %I', nspname, :'app')
  FROM pg_namespace WHERE nspname IN ('qcat_market', 'qcat_engine', 'qcat_backtest') \gexec
SELECT format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', nspname, :'app')
  FROM pg_namespace WHERE nspname IN ('qcat_market', 'qcat_engine', 'qcat_backtest') \gexec

-- The read side's views: QCAT recreates them at every rebuild, so their schema is the app's.
CREATE SCHEMA IF NOT EXISTS qcat_read AUTHORIZATION :"app";
ALTER SCHEMA qcat_read OWNER TO :"app";
CREATE SCHEMA IF NOT EXISTS qcat_private AUTHORIZATION :"app";
ALTER SCHEMA qcat_private OWNER TO :"app";
REVOKE ALL ON SCHEMA qcat_private FROM PUBLIC;

-- The monthly restore drill restores into this database and empties it again.
SELECT format('CREATE DATABASE %I OWNER %I', :'drill', :'app')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'drill') \gexec
SQL

echo "QCAT roles ready: $owner (migrations), $app (qcat serve), scratch database $drill"
