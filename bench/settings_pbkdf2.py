"""The bench settings with Django's own PASSWORD_HASHERS (PBKDF2 first, as this project had them before Argon2):
the other side of section 9's comparison."""

from django.conf import global_settings

from bench.settings import *  # noqa: F403

PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
