"""PostgreSQL refuses UPDATE and DELETE on every history table and on the access log.

The function is installed by migration 0002; this post_migrate hook attaches the trigger to
every history table that exists, so a model added later by any app is protected as soon as its
migration runs. TRUNCATE (used only by test flushes and explicit DBA work) is not a row change.
"""

FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION carehub_refuse_history_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'CareHub audit table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def trigger_sql(conn, table: str) -> str:
    quoted = conn.ops.quote_name(table)
    return (
        f"CREATE OR REPLACE TRIGGER carehub_append_only BEFORE UPDATE OR DELETE ON {quoted} "
        "FOR EACH ROW EXECUTE FUNCTION carehub_refuse_history_change();"
    )


def protected_tables() -> list[str]:
    from audit.models import AccessLog, HistoryOrigin, Seal
    from carehub.history import history_tables

    return [
        *history_tables(),
        AccessLog._meta.db_table,
        HistoryOrigin._meta.db_table,
        Seal._meta.db_table,
    ]


def protect_history_tables(using: str = "default", **_signal_kwargs) -> None:
    from django.db import connections

    conn = connections[using]
    if conn.vendor != "postgresql":
        return
    existing = set(conn.introspection.table_names())
    with conn.cursor() as cursor:
        cursor.execute(FUNCTION_SQL)
        for table in protected_tables():
            if table in existing:
                cursor.execute(trigger_sql(conn, table))
