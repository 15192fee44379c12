"""django-tenants' PostgreSQL backend, keeping a connection's search_path across requests.

django-tenants forgets what it last SET on a connection whenever a tenant is chosen, so every request
(and every task) on a kept connection (CONN_MAX_AGE) sends `SET search_path` again, a round trip,
even when the path is the one already in effect. This backend remembers the path last SET on the
connection and, when a newly chosen tenant's path is that one, sends nothing. The memory is dropped
wherever the real path may have changed: closing the connection, a rollback and a savepoint
rollback (a SET is transactional), as django-tenants drops its own; `SET LOCAL`s
(tenants/schema_clone.py) end with their transaction.
"""

from __future__ import annotations

from typing import Any

from django_tenants.postgresql_backend import base


class DatabaseWrapper(base.DatabaseWrapper):
    _path_on_connection: list[str] | None = None

    def set_tenant(self, tenant: Any, include_public: bool = True) -> None:
        set_now: list[str] | None = getattr(self, "search_path_set_schemas", None)
        if set_now is not None:
            self._path_on_connection = set_now
        super().set_tenant(tenant, include_public)
        if (self._path_on_connection is not None and self.connection is not None
                and self._path_on_connection == self._get_cursor_search_paths()):
            self.search_path_set_schemas = self._path_on_connection

    def close(self) -> None:
        self._path_on_connection = None
        super().close()

    def rollback(self) -> None:
        self._path_on_connection = None
        super().rollback()

    def savepoint_rollback(self, sid: str) -> None:
        try:
            super().savepoint_rollback(sid)
        finally:
            self._path_on_connection = None
