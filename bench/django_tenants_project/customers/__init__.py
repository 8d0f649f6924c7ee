"""The shared app of the django-tenants project: its tenant and domain models, as django-tenants' docs have them."""
