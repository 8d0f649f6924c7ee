from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"

    def ready(self):
        # Not a dodged cycle: seed.py imports the models, which can only be imported once the app registry is.
        from .seed import seed_root

        post_migrate.connect(seed_root, sender=self)
