"""Secrets kept in the catalog, encrypted at rest: never in Redis, job arguments, logs or responses.

- The admin password between the request and the job: the request must answer 202 at once, so it cannot afford
  Django's password hash (bench/RESULTS.md); it stores the password Fernet-encrypted with a key derived from
  SECRET_KEY, and the job hashes it and erases it.
- A database server's password, for as long as the server is registered (`encrypt_secret`).

Each kind has a key of its own (HKDF's `info`). After a rotation of SECRET_KEY, what an old key (in
SECRET_KEY_FALLBACKS) encrypted is still decrypted.
"""

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

ADMIN_PASSWORD = b"diquis.tenant-admin-password"
SERVER_SECRET = b"diquis.database-server-secret"


def _fernet_of(secret_key, purpose):
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


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


class PasswordUnavailable(Exception):
    pass


def decrypt_password(ciphertext):
    if not ciphertext:
        raise PasswordUnavailable("The admin password is no longer available; delete and create the tenant again.")
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as error:
        raise PasswordUnavailable("The admin password cannot be decrypted (SECRET_KEY changed?).") from error
