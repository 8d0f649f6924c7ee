"""The django-tenants project under the next release: bench.tenant_product's migrations are the release's, which
add 0023_order_external_reference (a column and an index on its orders table) to this release's 22."""

from .settings import *  # noqa: F403

MIGRATION_MODULES = {"tenant_product": "bench.tenant_product.migrations_release"}
