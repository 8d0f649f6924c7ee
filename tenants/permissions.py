from rest_framework.permissions import BasePermission

from .models import Role


def has_role(user, *roles):
    return bool(user and user.is_authenticated and set(roles) & set(user.roles or []))


class IsRoot(BasePermission):
    def has_permission(self, request, view):
        return has_role(request.user, Role.ROOT) and request.user.is_root


class IsTenantAdmin(BasePermission):
    """root or admin, of the request's own tenant (the middleware has matched token and tenant)."""

    def has_permission(self, request, view):
        tenant = getattr(request, "tenant", None)
        return (
            has_role(request.user, Role.ROOT, Role.ADMIN) and tenant is not None and request.user.tenant_id == tenant.id
        )
