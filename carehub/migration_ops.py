"""Migration operations shared by the apps' migrations."""

from django.db import migrations


def key_indexes_dropped(state_operations: list, indexes: list[tuple[str, str, str]]):
    """Foreign keys set to `db_index=False` (`state_operations`, the AlterFields makemigrations
    wrote) whose single-column indexes (`indexes`: name, table, column) are dropped, and only
    those: Django's AlterField would also drop and re-add each foreign key constraint,
    validating every row of tables that hold millions, under lock."""
    return migrations.SeparateDatabaseAndState(
        database_operations=[
            migrations.RunSQL(
                f"DROP INDEX IF EXISTS {name}",
                reverse_sql=f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})",
            )
            for name, table, column in indexes
        ],
        state_operations=state_operations,
    )
