"""The use cases of a tenant's users, for /api/users and the original web client's /api/identity/* alike: an
admin's (create, update or delete another user of the tenant) and each user's own (profile, password,
preferences, a forgotten password). They run in the database of the current tenant, where its users live.

A user's id reaches these functions only through tenants.selectors.user_of, which looks in the request's tenant:
another tenant's user is not found, whoever asks.
"""

from django.db import IntegrityError, transaction

from jobs.enqueue import enqueue
from notifications.framing import REVOKED
from notifications.services import close_sockets

from . import password_reset, tasks
from .exceptions import EmailInUse, Refused
from .models import Role, User
from .selectors import find_user
from .subjects import password_reset_subject

# What a user who never saved preferences gets (the original web client's own defaults).
DEFAULT_PREFERENCES = {"dark_mode_default": False, "page_size_default": 10}


def _saved(user, *, update_fields=None):
    """Save `user`; the tenant's one-email-per-user constraint, met by a concurrent request, is EmailInUse."""
    try:
        with transaction.atomic(using=user._state.db or User.objects.db):
            user.save(update_fields=update_fields)
    except IntegrityError as error:
        raise EmailInUse() from error
    return user


def _ensure_email_free(tenant_id, email, *, user=None):
    other = find_user(tenant_id, email)
    if other is not None and (user is None or other.pk != user.pk):
        raise EmailInUse()


def _signed_out_everywhere(user_id):
    """After a new password, a deactivation or a deletion: the user's open sockets close now (their tokens
    stopped working with the save: tenants.models.User.save)."""
    close_sockets(str(user_id), REVOKED)


def create_user(*, tenant_id, email, password, first_name="", last_name="", phone_number="", role=Role.BASIC):
    """A user of the current tenant (its database is the one the request is routed to)."""
    _ensure_email_free(tenant_id, email)
    try:
        with transaction.atomic(using=User.objects.db):
            return User.objects.create_user(
                email,
                password,
                tenant_id=tenant_id,
                roles=[role],
                first_name=first_name,
                last_name=last_name,
                phone_number=phone_number or "",
            )
    except IntegrityError as error:
        raise EmailInUse() from error


def _managed_by(user, acting_user, action):
    """An admin manages the other users of the tenant: not a root user, and not itself (its own profile and
    password have their calls; an admin who demoted or deleted itself would lock the tenant out)."""
    if Role.ROOT in (user.roles or []):
        raise Refused(f"Cannot {action} root user")
    if user.pk == acting_user.pk:
        raise Refused(f"Cannot {action} current user")


def update_user(*, user, acting_user, email, first_name, last_name, phone_number, is_active, role):
    """Another user of the tenant, as its admin edits it; a deactivation signs the user out everywhere."""
    _managed_by(user, acting_user, "edit")
    email = User.objects.normalize_email(email).lower()
    _ensure_email_free(user.tenant_id, email, user=user)
    was_active = user.is_active
    user.email, user.first_name, user.last_name = email, first_name, last_name
    user.phone_number, user.is_active, user.roles = phone_number or "", is_active, [role]
    _saved(user)
    if was_active and not is_active:
        _signed_out_everywhere(user.pk)
    return user


def delete_user(*, user, acting_user):
    _managed_by(user, acting_user, "delete")
    user_id = user.pk  # Django's delete() sets it to None
    user.delete()
    _signed_out_everywhere(user_id)


def update_profile(*, user, email, first_name, last_name, phone_number):
    """The signed-in user's own names, email and phone. The root user's email is DIQUIS_ROOT_EMAIL: `migrate`
    finds the root by it, and would seed a second root if it changed here."""
    email = User.objects.normalize_email(email).lower()
    if user.is_root and email != user.email:
        raise Refused("The root user's email is set by DIQUIS_ROOT_EMAIL", field="email")
    _ensure_email_free(user.tenant_id, email, user=user)
    user.email, user.first_name, user.last_name, user.phone_number = email, first_name, last_name, phone_number or ""
    return _saved(user, update_fields=["email", "first_name", "last_name", "phone_number"])


def change_password(*, user, current_password, new_password):
    """The signed-in user's new password, given the current one; every token of the user stops working."""
    if not user.check_password(current_password):
        raise Refused("Current password is incorrect", field="password")
    user.set_password(new_password)
    _saved(user, update_fields=["password"])
    _signed_out_everywhere(user.pk)


def preferences_of(user):
    return {**DEFAULT_PREFERENCES, **(user.preferences or {})}


def update_preferences(*, user, dark_mode_default, page_size_default):
    user.preferences = {"dark_mode_default": dark_mode_default, "page_size_default": page_size_default}
    return _saved(user, update_fields=["preferences"])


@transaction.atomic
def request_password_reset(*, tenant_id, email, reset_endpoint):
    """Enqueue the reset mail; the job (tasks.send_password_reset) looks the user up. The request does the same
    work whether the email is a user's or not, so neither its answer nor its time tells which."""
    enqueue(
        tasks.send_password_reset,
        subject=password_reset_subject(tenant_id),
        tenant_id=tenant_id,
        email=email.strip().lower(),
        reset_endpoint=reset_endpoint,
    )


def reset_password(*, tenant_id, email, token, password):
    """A new password for the tenant's active user `email`, given the token its reset mail carried. An unknown
    email, an inactive user, a wrong, expired or used token: the same refusal."""
    user = find_user(tenant_id, email)
    if not password_reset.token_is_valid(user if user is not None and user.is_active else None, token):
        raise Refused("Invalid or expired token", field="token")
    user.set_password(password)
    _saved(user, update_fields=["password"])
    _signed_out_everywhere(user.pk)
