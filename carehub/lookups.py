"""`field__any=[...]` on PostgreSQL: `field = ANY('{...}')`, the values as one array constant.

For a long list of keys in a table whose statistics are missing or stale (an organization's
first import: the patients it has just written): `field__in=<list>` renders thousands of
parameters slowly, and `field__in=<subquery>` is a semi-join the planner may run as a nested
loop when it believes the table holds one row (first import of 400 files: one lookup of 4,000
patients took 2.4 s). A filter on an array constant takes no join; PostgreSQL hashes the array.
"""

from django.db.models import Field, ForeignObject, Lookup


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False  # a list of values, not one value of the field

    def as_sql(self, compiler, connection):
        if connection.vendor != "postgresql":
            raise NotImplementedError("__any is PostgreSQL's = ANY(array); use __in elsewhere")
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", [*lhs_params, list(self.rhs)]


Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)  # relations take only their own lookups, not Field's
