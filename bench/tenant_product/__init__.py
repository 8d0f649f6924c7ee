"""bench.tenant_product: the tenant-side app of section 8. Its next release (migrations_release, 0023) adds this
column and this index to this table; both sides of the comparison check them in the databases themselves."""

ORDER_TABLE = "tenant_product_order"
NEW_COLUMN = "external_reference"
NEW_INDEX = "tp_order_external_ref_idx"
