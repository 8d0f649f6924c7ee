"""Which database a tenant-side model is read from and written to: the current tenant's.

The current database is a context variable, set per request by TenantMiddleware and per job by
`use_tenant`. Catalog tables (tenants, jobs, notifications, sessions...) always live in `default`.
"""

import functools
from contextvars import ContextVar

from django.apps import apps
from django.conf import settings
from django.utils.module_loading import import_string

from jobs.context import bound

current_database: ContextVar[str] = ContextVar("diquis_current_database", default="default")

# Models whose rows belong to a tenant: in an isolated tenant's own database, in `default` otherwise. Besides
# these, every model of the apps of DIQUIS_TENANT_APPS (tenant_app_labels).
TENANT_SIDE_MODELS = frozenset({"tenants.user"})


@functools.cache
def tenant_app_labels():
    """The labels of the apps of DIQUIS_TENANT_APPS (API.md): a SaaS's own apps, kept whole in each tenant's
    database. An entry is an app's module or its AppConfig's dotted path, as in INSTALLED_APPS."""
    labels = set()
    for entry in settings.DIQUIS_TENANT_APPS:
        name = entry
        if not apps.is_installed(entry):
            name = import_string(entry).name  # an AppConfig's path
        labels.add(next(config.label for config in apps.get_app_configs() if config.name == name))
    return frozenset(labels)


def is_tenant_side(app_label, model_name):
    if app_label in tenant_app_labels():
        return True
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
        # A tenant database holds the tenant-side tables only; a tenant app's every operation (RunSQL too).
        if app_label in tenant_app_labels():
            return True
        return model_name is not None and is_tenant_side(app_label, model_name)
