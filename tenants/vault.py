"""The admin password between the request and the job: encrypted at rest, never in Redis or job args.

The request must answer 202 at once, so it cannot afford Django's password hash (bench/RESULTS.md); it stores the
password Fernet-encrypted with a key derived from SECRET_KEY, and the job hashes it and erases it. After a rotation
of SECRET_KEY, what an old key (in SECRET_KEY_FALLBACKS) encrypted is still decrypted.
"""

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


def _fernet_of(secret_key):
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"diquis.tenant-admin-password").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def _fernet():
    """Encrypts with SECRET_KEY's key; decrypts with it or with the key of any of SECRET_KEY_FALLBACKS."""
    return MultiFernet([_fernet_of(key) for key in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)])


def encrypt_password(password):
    return _fernet().encrypt(password.encode()).decode()


class PasswordUnavailable(Exception):
    pass


def decrypt_password(ciphertext):
    if not ciphertext:
        raise PasswordUnavailable("The admin password is no longer available; delete and create the tenant again.")
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as error:
        raise PasswordUnavailable("The admin password cannot be decrypted (SECRET_KEY changed?).") from error
