"""The notifications of the tenants domain, worded exactly as API.md's table says."""

from notifications.framing import FORBIDDEN
from notifications.services import close_sockets, notify
from notifications.timestamps import format_utc

from .connections import use_tenant
from .models import UpgradeStatus
from .selectors import users_of

TENANT_CREATED = "TenantCreated"
TENANT_CREATION_FAILED = "TenantCreationFailed"
TENANT_UPDATED = "TenantUpdated"
TENANT_UPDATE_FAILED = "TenantUpdateFailed"
TENANT_DELETED = "TenantDeleted"
TENANT_DELETION_FAILED = "TenantDeletionFailed"
TENANT_MOVED = "TenantMoved"
TENANT_MOVE_FAILED = "TenantMoveFailed"
TENANT_PROVISIONING_PROGRESS = "TenantProvisioningProgress"

_SUCCESS = {
    "create": (TENANT_CREATED, "Tenant '{name}' has been successfully created and provisioned."),
    "update": (TENANT_UPDATED, "Tenant '{name}' has been successfully updated."),
    "delete": (TENANT_DELETED, "Tenant '{name}' has been successfully deleted."),
    "move": (TENANT_MOVED, "Tenant '{name}' has been successfully moved."),
}
_FAILURE = {
    "create": (TENANT_CREATION_FAILED, "Tenant creation failed: {error}"),
    "update": (TENANT_UPDATE_FAILED, "Tenant update failed: {error}"),
    "delete": (TENANT_DELETION_FAILED, "Tenant deletion failed: {error}"),
    "move": (TENANT_MOVE_FAILED, "Tenant move failed: {error}"),
}


def _with_server(data, database_server):
    """A move's events also name the server the tenant's database is on now (API.md)."""
    return data if database_server is None else {**data, "databaseServer": database_server}


def operation_succeeded(*, user_id, operation, tenant_id, tenant_name, database_server=None):
    event, message = _SUCCESS[operation]
    data = {
        "type": "success",
        "message": message.format(name=tenant_name),
        "tenantId": tenant_id,
        "tenantName": tenant_name,
        "timestamp": format_utc(),
    }
    return notify(user_id, event, _with_server(data, database_server))


def operation_failed(*, user_id, operation, tenant_id, error, database_server=None):
    event, message = _FAILURE[operation]
    data = {"type": "error", "message": message.format(error=error), "tenantId": tenant_id, "timestamp": format_utc()}
    return notify(user_id, event, _with_server(data, database_server))


def progress(*, user_id, tenant_id, step, index, count):
    data = {"tenantId": tenant_id, "step": step, "stepIndex": index, "stepCount": count, "timestamp": format_utc()}
    return notify(user_id, TENANT_PROVISIONING_PROGRESS, data, persist=False)


def sockets_closed(tenant):
    """Close the open sockets of every user of a tenant that was just deactivated (4403)."""
    with use_tenant(tenant):
        user_ids = [str(user_id) for user_id in users_of(tenant.id).values_list("pk", flat=True)]
    for user_id in user_ids:
        close_sockets(user_id, FORBIDDEN)


# Upgrades (API.md, "Tenant database upgrades"): to the root admin who started the upgrade.

UPGRADE_PROGRESS = "UpgradeProgress"
UPGRADE_FINISHED = "UpgradeFinished"
UPGRADE_FAILED = "UpgradeFailed"


def upgrade_progress(upgrade, tally):
    data = {"upgradeId": upgrade.pk, **tally, "timestamp": format_utc()}
    return notify(_plain(upgrade.initiated_by), UPGRADE_PROGRESS, data, persist=False)


def upgrade_ended(upgrade, tally):
    """Its end, or its pause: UpgradeFinished when it succeeded, UpgradeFailed otherwise (failed, paused or
    cancelled; the message says which)."""
    if upgrade.status == UpgradeStatus.SUCCEEDED:
        event, kind = UPGRADE_FINISHED, "success"
        message = (
            f"Upgrade {upgrade.pk} finished: {tally['done']} tenant database(s) upgraded, {tally['skipped']} skipped."
        )
    else:
        event, kind = UPGRADE_FAILED, "error"
        message = _UPGRADE_ENDS[upgrade.status].format(id=upgrade.pk, error=upgrade.error, **tally)
    data = {"type": kind, "message": message, "upgradeId": upgrade.pk, **tally, "timestamp": format_utc()}
    return notify(_plain(upgrade.initiated_by), event, data)


_UPGRADE_ENDS = {
    UpgradeStatus.SUCCEEDED: "Upgrade {id} finished: {done} tenant database(s) upgraded, {skipped} skipped.",
    UpgradeStatus.FAILED: "Upgrade {id} finished with {failed} failed tenant database(s); they keep their old schema.",
    UpgradeStatus.PAUSED: "Upgrade {id} paused: {error}.",
    UpgradeStatus.CANCELLED: "Upgrade {id} cancelled: {done} tenant database(s) upgraded, the rest left as they were.",
}


def _plain(user_id):
    return str(user_id) if user_id is not None else None
