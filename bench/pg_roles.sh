#!/usr/bin/env bash
# Two PostgreSQL roles end to end (README "Two database roles"): the owner creates the
# application's role and migrates; the application works as that role and cannot erase or
# rewrite the audit. Prints each step and what PostgreSQL answered; exits non-zero on a surprise.
#
#   bash bench/pg_roles.sh            # PostgreSQL on 127.0.0.1:5432, superuser postgres
#   PGROLES_DB=carehub_roles PGROLES_APP_ROLE=carehub_app bash bench/pg_roles.sh
set -euo pipefail
cd "$(dirname "$0")/.."

HOST=${PGROLES_HOST:-127.0.0.1}
DB=${PGROLES_DB:-carehub_roles}
OWNER=${PGROLES_OWNER:-postgres}
APP=${PGROLES_APP_ROLE:-carehub_app}
APP_PASSWORD=${PGROLES_APP_PASSWORD:-carehub-app-local}
PY=.venv/bin/python

export DEBUG=true
export MIGRATION_DATABASE_URL="postgres://$OWNER@$HOST:5432/$DB"
export DATABASE_URL="postgres://$APP:$APP_PASSWORD@$HOST:5432/$DB"
APP_PSQL=(psql "$DATABASE_URL" -X -v ON_ERROR_STOP=1 -tA)

step() { printf '\n==> %s\n' "$*"; }

step "database $DB, created by the owner $OWNER"
if ! psql -h "$HOST" -U "$OWNER" -XtAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    createdb -h "$HOST" -U "$OWNER" "$DB"
fi

step "create_app_role: the role $APP, no ownership, its grants (as $OWNER)"
$PY manage.py create_app_role

step "migrate as the owner; the app role's grants are applied again"
$PY manage.py migrate --no-input | tail -n 2

step "the application's normal work, as $APP: demo data through the services"
$PY manage.py seed_demo --patients 200 | tail -n 1
"${APP_PSQL[@]}" -c "SELECT 'current_user = ' || current_user || ', superuser = ' || rolsuper FROM pg_roles WHERE rolname = current_user"
"${APP_PSQL[@]}" -c "SELECT 'patients ' || count(*) FROM patients_patient"
"${APP_PSQL[@]}" -c "SELECT 'patient history rows ' || count(*) FROM patients_historicalpatient"

step "what the application's role may not do"
refused=0
expect_refusal() {
    local output
    if output=$("${APP_PSQL[@]}" -c "$1" 2>&1); then
        echo "ALLOWED (wrong): $1"
        return 1
    fi
    echo "refused: $1"
    echo "         $(printf "%s\n" "${output#*ERROR:  }" | head -n 1)"
    refused=$((refused + 1))
}
expect_refusal "TRUNCATE audit_accesslog"
expect_refusal "ALTER TABLE audit_accesslog DISABLE TRIGGER carehub_append_only"
expect_refusal "ALTER TABLE patients_historicalpatient DISABLE TRIGGER ALL"
expect_refusal "UPDATE patients_historicalpatient SET history_change_reason = 'forged'"
expect_refusal "DELETE FROM patients_historicalpatient"
expect_refusal "DELETE FROM audit_accesslog"
expect_refusal "DROP TABLE patients_patient"
expect_refusal "CREATE TABLE forged (id int)"
expect_refusal "INSERT INTO django_migrations (app, name, applied) VALUES ('x', 'y', now())"

step "the suite's role tests, run as $APP (test database made by the owner)"
$PY -m pytest tests/audit/test_database_roles.py tests/audit/test_append_only_history.py \
    -q -p no:cacheprovider

printf '\n%s statements refused to %s; the owner %s migrates.\n' "$refused" "$APP" "$OWNER"
