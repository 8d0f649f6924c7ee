from django.apps import AppConfig


class TenantProductConfig(AppConfig):
    name = "bench.tenant_product"
    label = "tenant_product"
    default_auto_field = "django.db.models.BigAutoField"
