from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"

    def ready(self):
        # Not a dodged cycle: seed.py imports the models, which can only be imported once the app registry is.
        from .seed import seed_database_servers, seed_root
        from .services import revoke_tokens_at_sign_out

        post_migrate.connect(seed_root, sender=self)
        post_migrate.connect(seed_database_servers, sender=self)
        user_logged_out.connect(revoke_tokens_at_sign_out)
