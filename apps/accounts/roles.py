"""Roles, which tenant kind each belongs to, and named groups of roles used by permissions."""

from enum import StrEnum


class Role(StrEnum):
    CLINIC_ADMIN = "clinic_admin"
    TECHNOLOGIST = "technologist"
    REFERRING_PHYSICIAN = "referring_physician"
    HOSPITAL_ADMIN = "hospital_admin"
    CONSULT_COORDINATOR = "consult_coordinator"
    RADIOLOGIST = "radiologist"
    OPERATOR = "operator"


CLINIC_ROLES = frozenset({Role.CLINIC_ADMIN, Role.TECHNOLOGIST, Role.REFERRING_PHYSICIAN})
HOSPITAL_ROLES = frozenset({Role.HOSPITAL_ADMIN, Role.CONSULT_COORDINATOR, Role.RADIOLOGIST})
PLATFORM_ROLES = frozenset({Role.OPERATOR})

ADMIN_ROLES = frozenset({Role.CLINIC_ADMIN, Role.HOSPITAL_ADMIN})
TENANT_ROLES = CLINIC_ROLES | HOSPITAL_ROLES

ROLE_CHOICES = [(role.value, role.value.replace("_", " ").capitalize()) for role in Role]


def roles_for_kind(kind: str) -> frozenset[Role]:
    """The roles a user may hold in a tenant of this kind ('clinic', 'hospital', or 'public')."""
    if kind == "clinic":
        return CLINIC_ROLES
    if kind == "hospital":
        return HOSPITAL_ROLES
    return PLATFORM_ROLES


def admin_role_for_kind(kind: str) -> Role:
    return Role.CLINIC_ADMIN if kind == "clinic" else Role.HOSPITAL_ADMIN
