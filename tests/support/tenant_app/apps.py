from django.apps import AppConfig


class TenantNotesConfig(AppConfig):
    name = "tests.support.tenant_app"
    label = "tenant_notes"
    default_auto_field = "django.db.models.BigAutoField"
