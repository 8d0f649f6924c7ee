"""Secrets kept in the catalog, encrypted at rest: never in Redis, job arguments, logs or responses.

- The admin password between the request and the job: the request must answer 202 at once, so it cannot afford
  Django's password hash (bench/RESULTS.md); it stores the password Fernet-encrypted with a key derived from
  SECRET_KEY, and the job hashes it and erases it.
- A database server's password, for as long as the server is registered (`encrypt_secret`).
- The password of an isolated tenant's own database role is not stored at all: it is derived from SECRET_KEY and
  the role's name (`tenant_role_password`), so every web and worker process computes the same one, and the
  catalog, Redis and the job arguments never hold it. A rotation of SECRET_KEY changes every such password: the
  roles learn their new one from `migrate_tenants` (tenants.provisioning.roles), run with the new key before the
  web and worker processes start with it.

Each kind has a key of its own (HKDF's `info`). After a rotation of SECRET_KEY, what an old key (in
SECRET_KEY_FALLBACKS) encrypted is still decrypted.
"""

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

ADMIN_PASSWORD = b"diquis.tenant-admin-password"
SERVER_SECRET = b"diquis.database-server-secret"
TENANT_ROLE = b"diquis.tenant-database-role"


def _derived_key(secret_key, purpose):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret_key.encode())


def _fernet_of(secret_key, purpose):
    return Fernet(base64.urlsafe_b64encode(_derived_key(secret_key, purpose)))


def _fernet(purpose=ADMIN_PASSWORD):
    """Encrypts with SECRET_KEY's key; decrypts with it or with the key of any of SECRET_KEY_FALLBACKS."""
    keys = (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)
    return MultiFernet([_fernet_of(key, purpose) for key in keys])


def encrypt_password(password):
    return _fernet().encrypt(password.encode()).decode()


def encrypt_secret(secret):
    return _fernet(SERVER_SECRET).encrypt(secret.encode()).decode()


def decrypt_secret(ciphertext):
    return _fernet(SERVER_SECRET).decrypt(ciphertext.encode()).decode()


def tenant_role_password(role):
    """The password of a tenant's database role: HMAC-SHA256 of its name under a key of its own derived from
    SECRET_KEY. Never shown, logged or stored; the role itself is given only its SCRAM verifier."""
    return hmac.new(_derived_key(settings.SECRET_KEY, TENANT_ROLE), role.encode(), hashlib.sha256).hexdigest()


class PasswordUnavailable(Exception):
    pass


def decrypt_password(ciphertext):
    if not ciphertext:
        raise PasswordUnavailable("The admin password is no longer available; delete and create the tenant again.")
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as error:
        raise PasswordUnavailable("The admin password cannot be decrypted (SECRET_KEY changed?).") from error
