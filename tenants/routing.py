"""Which database a tenant-side model is read from and written to: the current tenant's.

The current database is a context variable, set per request by TenantMiddleware and per job by
`use_tenant`. Catalog tables (tenants, jobs, notifications, sessions...) always live in `default`.
"""

from contextvars import ContextVar

from jobs.context import bound

current_database: ContextVar[str] = ContextVar("diquis_current_database", default="default")

# Models whose rows belong to a tenant: in an isolated tenant's own database, in `default` otherwise.
TENANT_SIDE_MODELS = frozenset({"tenants.user"})


def is_tenant_side(app_label, model_name):
    return f"{app_label}.{model_name}".lower() in TENANT_SIDE_MODELS


def use_database(alias):
    return bound(current_database, alias)


class TenantRouter:
    def _route(self, model):
        if is_tenant_side(model._meta.app_label, model._meta.model_name):
            return current_database.get()
        return "default"

    def db_for_read(self, model, **hints):
        return self._route(model)

    def db_for_write(self, model, **hints):
        return self._route(model)

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if db == "default":
            return True
        # A tenant database holds the tenant-side tables only.
        return model_name is not None and is_tenant_side(app_label, model_name)
