"""The django-tenants project of section 8 (bench.upgrades_django_tenants): bench.tenant_product as the tenant app
of a schema-per-tenant project, run only in its own venv (bench.django_tenants_env), never by the product."""
