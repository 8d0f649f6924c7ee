"""The bench's settings as the next release of the product has them: bench.tenant_product with one more
migration (a column and an index on its orders table), for section 8."""

from bench.settings import *  # noqa: F403

MIGRATION_MODULES = {"tenant_product": "bench.tenant_product.migrations_release"}
