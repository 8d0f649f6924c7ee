"""Tenant.transition: the one place where status changes are checked. Every pair of statuses is tried
against the moves the operations make (DESIGN.md, "Tenants and databases"); any other is refused as a bug,
and leaves the status as it was."""

import itertools

import pytest

from tenants.models import IllegalTransition, ProvisioningStatus, Tenant

S = ProvisioningStatus
# Written out here, not read from tenants.models.TRANSITIONS: a move added there by mistake must fail a test.
LEGAL = {
    (S.PENDING, S.PROVISIONING),  # a creation's first attempt
    (S.PENDING, S.FAILED),  # its last attempt failed before it began (e.g. abandoned)
    (S.PROVISIONING, S.PROVISIONING),  # a retried attempt
    (S.PROVISIONING, S.ACTIVE),
    (S.PROVISIONING, S.FAILED),
    (S.ACTIVE, S.UPDATING),
    (S.ACTIVE, S.DELETING),
    (S.UPDATING, S.UPDATING),
    (S.UPDATING, S.ACTIVE),
    (S.UPDATING, S.FAILED),
    (S.FAILED, S.PENDING),  # retry of a creation
    (S.FAILED, S.UPDATING),  # retry of an update, or a new one
    (S.FAILED, S.DELETING),
    (S.DELETING, S.DELETING),
    (S.DELETING, S.FAILED),
    (S.ACTIVE, S.MOVING),  # a move of the tenant's database to another server
    (S.MOVING, S.MOVING),  # a resumed attempt
    (S.MOVING, S.ACTIVE),  # moved, or failed and whole on its old server (API.md)
}
PAIRS = list(itertools.product(S, S))


@pytest.mark.parametrize(("before", "after"), [p for p in PAIRS if p in LEGAL], ids=lambda s: s.value)
def test_a_legal_move_changes_the_status(before, after):
    tenant = Tenant(id="acme", status=before)
    tenant.transition(after)
    assert tenant.status == after


@pytest.mark.parametrize(("before", "after"), [p for p in PAIRS if p not in LEGAL], ids=lambda s: s.value)
def test_any_other_move_is_refused_and_changes_nothing(before, after):
    tenant = Tenant(id="acme", status=before)
    with pytest.raises(IllegalTransition, match=f"tenant acme: {before} -> {after}"):
        tenant.transition(after)
    assert tenant.status == before
