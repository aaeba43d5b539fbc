from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Cursor paging by primary key: constant cost per page at millions of rows, no COUNT(*)."""

    ordering = "id"
    page_size = 50
    max_page_size = 500
    page_size_query_param = "page_size"
