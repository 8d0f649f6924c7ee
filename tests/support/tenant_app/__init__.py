"""A tenant-side app of the suite's own (DIQUIS_TENANT_APPS): what a SaaS built on Diquis keeps in each tenant's
database. The product ships none; the tests bring this one, the benchmarks a bigger one (bench.tenant_product).

`migrations` is its release of today; `migrations_next` the next release (one more migration: a column and an
index), `migrations_next_python` a next release whose new migration runs Python (RunPython).
"""
