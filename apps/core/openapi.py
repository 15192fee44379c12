"""How the OpenAPI schema names operations (the DEFAULT_SCHEMA_CLASS of the REST framework)."""

from drf_spectacular.openapi import AutoSchema


class ApiAutoSchema(AutoSchema):
    """Operation ids that stay unique for plain APIViews.

    drf-spectacular names every GET of an APIView `…_retrieve`, so a collection and its items collide
    (`/films/` and `/films/{film_id}/`): a GET of a path that does not end in a parameter is a list,
    and an operation on a path that ends in a parameter is about one item."""

    def get_operation_id(self) -> str:
        operation_id = super().get_operation_id()
        names_one_item = self.path.rstrip("/").endswith("}")
        if self.method == "GET" and not names_one_item and operation_id.endswith("_retrieve"):
            return operation_id.removesuffix("_retrieve") + "_list"
        if names_one_item and self.method != "GET" and "{" in self.path.rstrip("/").rsplit("/", 2)[-2]:
            # /consults/{route_id}/{action}/: an action on one item, not the collection's create.
            return f"{operation_id}_item_action"
        return operation_id
