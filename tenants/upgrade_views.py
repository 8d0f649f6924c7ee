"""The tenant database upgrades API (API.md, "Tenant database upgrades"), root only: thin views over
tenants.upgrade_services and tenants.selectors."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from diquis.envelope import accepted, envelope_of, found, ok

from . import selectors, upgrade_services
from .permissions import IsRoot
from .provisioning.template import migration_fingerprint
from .serializers import StartUpgradeSerializer, UpgradeSerializer, UpgradeStatusSerializer

ACCEPTED = envelope_of(serializers.IntegerField(), "UpgradeAcceptedEnvelope")
UPGRADE_INITIATED = upgrade_services.UPGRADE_INITIATED


# Ids are bigints: a longer number in the path is no upgrade's (and must not reach the database as one).
MAX_ID = 2**63 - 1


def _upgrade_or_404(upgrade_id):
    return found(selectors.get_upgrade(upgrade_id) if upgrade_id <= MAX_ID else None)


def _accepted(upgrade_id, message):
    return accepted(upgrade_id, message, location=f"/api/upgrades/{upgrade_id}")


class UpgradeStatusView(APIView):
    """Who is behind the head, from the catalog alone: no tenant database is opened."""

    permission_classes = [IsRoot]

    @extend_schema(responses=envelope_of(UpgradeStatusSerializer(), "UpgradeStatusEnvelope"))
    def get(self, request):
        head = migration_fingerprint()
        behind = list(selectors.tenants_behind(head).values_list("id", flat=True))
        at_head = selectors.isolated_tenants().count() - len(behind)
        return ok({"head": head, "atHead": at_head, "behind": len(behind), "behindTenants": behind})


class UpgradeListView(APIView):
    permission_classes = [IsRoot]

    @extend_schema(responses=envelope_of(UpgradeSerializer(many=True), "UpgradeListEnvelope"))
    def get(self, request):
        return ok(UpgradeSerializer(selectors.upgrade_list(), many=True).data)

    @extend_schema(request=StartUpgradeSerializer, responses={202: ACCEPTED})
    def post(self, request):
        body = StartUpgradeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        upgrade = upgrade_services.start_upgrade(
            initiated_by=request.user.pk,
            canary=data["canary"],
            parallel=data["parallel"],
            max_failures=data["maxFailures"],
        )
        return _accepted(upgrade.pk, UPGRADE_INITIATED)


class UpgradeDetailView(APIView):
    permission_classes = [IsRoot]

    @extend_schema(responses=envelope_of(UpgradeSerializer(), "UpgradeEnvelope"))
    def get(self, request, upgrade_id):
        return ok(UpgradeSerializer(_upgrade_or_404(upgrade_id)).data)


class UpgradeActionView(APIView):
    """pause, resume, cancel (upgrade_services.ACTIONS): 202, or 409 in the wrong state. One view class each, for
    their OpenAPI operation ids."""

    permission_classes = [IsRoot]
    action = None

    @extend_schema(request=None, responses={202: ACCEPTED})
    def post(self, request, upgrade_id):
        _upgrade_or_404(upgrade_id)
        service, message = upgrade_services.ACTIONS[self.action]
        service(upgrade_id=upgrade_id)
        return _accepted(upgrade_id, message)


class UpgradePauseView(UpgradeActionView):
    action = "pause"


class UpgradeResumeView(UpgradeActionView):
    action = "resume"


class UpgradeCancelView(UpgradeActionView):
    action = "cancel"


ACTION_VIEWS = [UpgradePauseView, UpgradeResumeView, UpgradeCancelView]
