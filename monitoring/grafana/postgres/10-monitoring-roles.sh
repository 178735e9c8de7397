#!/bin/sh
# Roles for monitoring, made when the PostgreSQL container initialises its data folder
# (docker-compose.yml mounts this file in /docker-entrypoint-initdb.d/). Safe to run again.
#
#   grafana_reader     Grafana's "QCAT read models" data source: SELECT on the views in schema
#                      qcat_read, present and future (QCAT recreates them at each rebuild), nothing else.
#   postgres_exporter  postgres_exporter: the built-in pg_monitor role, no table access.
#
# Environment: POSTGRES_USER (the role to run this as), QCAT_READ_OWNER (the role QCAT serves as,
# which makes the views in qcat_read; default POSTGRES_USER), POSTGRES_DB,
# GRAFANA_PG_PASSWORD, POSTGRES_EXPORTER_PASSWORD; optionally GRAFANA_PG_USER and
# POSTGRES_EXPORTER_USER to rename the roles. psql's own PG* variables say where to connect.
set -eu

: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${POSTGRES_DB:?POSTGRES_DB is required}"
: "${GRAFANA_PG_PASSWORD:?GRAFANA_PG_PASSWORD is required (Grafana reads the read models with it)}"
: "${POSTGRES_EXPORTER_PASSWORD:?POSTGRES_EXPORTER_PASSWORD is required (postgres_exporter logs in with it)}"

psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 \
  --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v owner="${QCAT_READ_OWNER:-$POSTGRES_USER}" \
  -v database="$POSTGRES_DB" \
  -v reader="${GRAFANA_PG_USER:-grafana_reader}" \
  -v reader_password="$GRAFANA_PG_PASSWORD" \
  -v exporter="${POSTGRES_EXPORTER_USER:-postgres_exporter}" \
  -v exporter_password="$POSTGRES_EXPORTER_PASSWORD" <<'SQL'
SET client_min_messages = warning;
SELECT format('CREATE ROLE %I LOGIN', :'reader')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'reader') \gexec
ALTER ROLE :"reader" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'reader_password';
ALTER ROLE :"reader" SET default_transaction_read_only = on;
ALTER ROLE :"reader" SET statement_timeout = '30s';

SELECT format('CREATE ROLE %I LOGIN', :'exporter')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'exporter') \gexec
ALTER ROLE :"exporter" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'exporter_password';
GRANT pg_monitor TO :"exporter";

-- QCAT's migrations create this schema too (IF NOT EXISTS); making it now lets the default
-- privileges below cover every view QCAT will create in it.
CREATE SCHEMA IF NOT EXISTS qcat_read AUTHORIZATION :"owner";
GRANT CONNECT ON DATABASE :"database" TO :"reader";
GRANT USAGE ON SCHEMA qcat_read TO :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA qcat_read TO :"reader";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA qcat_read GRANT SELECT ON TABLES TO :"reader";
SQL

echo "monitoring roles ready: ${GRAFANA_PG_USER:-grafana_reader}, ${POSTGRES_EXPORTER_USER:-postgres_exporter}"
