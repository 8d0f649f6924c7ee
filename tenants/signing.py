"""simplejwt's token classes, verified with Django's key rotation: SECRET_KEY, then SECRET_KEY_FALLBACKS.

Django signs with SECRET_KEY and still accepts what the keys in SECRET_KEY_FALLBACKS signed (sessions,
password-reset links); simplejwt knows one key only, so rotating SECRET_KEY would sign every user out.
These classes sign with SECRET_KEY and accept a token of a fallback key until it expires. The vault
(tenants.vault) follows the same two settings.
"""

from django.conf import settings
from rest_framework_simplejwt import tokens
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenBackendExpiredToken
from rest_framework_simplejwt.settings import api_settings


class RotatingKeysTokenBackend(TokenBackend):
    """Signs with its own key; a token it cannot verify is tried with each of Django's fallback keys."""

    def decode(self, token, verify=True):
        try:
            return super().decode(token, verify)
        except TokenBackendExpiredToken:
            raise
        except TokenBackendError:
            if not verify or not self.algorithm.startswith("HS"):
                raise
            for key in settings.SECRET_KEY_FALLBACKS:
                try:
                    return self.with_key(key).decode(token, verify)
                except TokenBackendExpiredToken:
                    raise
                except TokenBackendError:
                    continue
            raise

    def with_key(self, key):
        return TokenBackend(self.algorithm, key, "", self.audience, self.issuer, None, self.leeway, self.json_encoder)


token_backend = RotatingKeysTokenBackend(
    api_settings.ALGORITHM,
    api_settings.SIGNING_KEY,
    api_settings.VERIFYING_KEY,
    api_settings.AUDIENCE,
    api_settings.ISSUER,
    api_settings.JWK_URL,
    api_settings.LEEWAY,
    api_settings.JSON_ENCODER,
)


class AccessToken(tokens.AccessToken):
    _token_backend = token_backend


class RefreshToken(tokens.RefreshToken):
    _token_backend = token_backend
    access_token_class = AccessToken
