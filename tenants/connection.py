"""The database connection as django-tenants extends it (`tenant`, `schema_name`, `set_schema_to_public`).

django-tenants ships no type information, so django-stubs sees a plain `BaseDatabaseWrapper`; code that
needs the tenant attributes goes through `tenant_connection()` instead of importing `connection`."""

from typing import Any

from django.db import connection


def tenant_connection() -> Any:
    return connection
