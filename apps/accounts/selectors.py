"""Reads of accounts that the request path needs."""

from __future__ import annotations

from functools import cache

from django.db import connection

from apps.accounts.models import ApiToken, User
from apps.core.rows import column_list, instance_from_row


def token_with_user(key_hash: str) -> ApiToken | None:
    """The current schema's token with this hash, its user loaded (as `select_related("user")`).

    Plain SQL: it runs on every token-authenticated request (see apps.core.rows)."""
    with connection.cursor() as cursor:
        cursor.execute(_token_with_user_sql(), [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    token, next_column = instance_from_row(ApiToken, row)
    user, _ = instance_from_row(User, row, next_column)
    ApiToken.user.field.set_cached_value(token, user)
    return token


@cache
def _token_with_user_sql() -> str:
    quote = connection.ops.quote_name
    return (
        f"SELECT {column_list(ApiToken, 'token')}, {column_list(User, 'owner')} "
        f"FROM {quote(ApiToken._meta.db_table)} AS token "
        f"JOIN {quote(User._meta.db_table)} AS owner ON owner.id = token.user_id WHERE token.key_hash = %s"
    )
