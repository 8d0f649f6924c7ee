"""The tenants API (API.md): thin views that validate with a serializer and call a service."""

from django.utils.cache import add_never_cache_headers
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from diquis.envelope import accepted, envelope_of, found, ok

from . import selectors, services, tokens, user_services
from .models import ProvisioningStatus
from .permissions import IsRoot, IsTenantAdmin
from .serializers import (
    CreateTenantSerializer,
    CreateUserSerializer,
    MoveTenantSerializer,
    RefreshRequestSerializer,
    TenantOptionSerializer,
    TenantSerializer,
    TokenRequestSerializer,
    TokenResponseSerializer,
    UpdateTenantSerializer,
    UserSerializer,
)
from .throttles import CostlyWriteThrottle, LoginAddressThrottle, LoginEmailThrottle, TokenRefreshThrottle

UPDATE_INITIATED = "Tenant update initiated. The tenant will be updated in the background."
DELETION_INITIATED = "Tenant deletion initiated. The tenant will be removed in the background."
MOVE_INITIATED = "Tenant move initiated. The tenant's database will be moved in the background."
RETRY_INITIATED = "Tenant retry initiated. The failed operation will run again in the background."
SIGNED_OUT = "Signed out: every token of this user is revoked."


ACCEPTED = envelope_of(serializers.CharField(), "AcceptedEnvelope")


def _tenant_or_404(tenant_id):
    return found(selectors.get_tenant(tenant_id))


def _accepted(tenant_id, message):
    return accepted(tenant_id, message, location=f"/api/tenants/{tenant_id}")


class TenantOptionsView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(responses=envelope_of(TenantOptionSerializer(many=True), "TenantOptionsEnvelope"))
    def get(self, request):
        return ok(TenantOptionSerializer(selectors.tenant_options(), many=True).data)


class TenantListView(APIView):
    permission_classes = [IsRoot]
    throttle_classes = [CostlyWriteThrottle]
    throttle_scope = "tenant_create"

    @extend_schema(
        parameters=[OpenApiParameter("status", enum=ProvisioningStatus.values, required=False)],
        responses=envelope_of(TenantSerializer(many=True), "TenantListEnvelope"),
    )
    def get(self, request):
        status = request.query_params.get("status")
        if status is not None and status not in ProvisioningStatus.values:
            raise serializers.ValidationError({"status": [f"Must be one of {', '.join(ProvisioningStatus.values)}."]})
        return ok(TenantSerializer(selectors.tenant_list(status=status), many=True).data)

    @extend_schema(request=CreateTenantSerializer, responses={202: ACCEPTED})
    def post(self, request):
        body = CreateTenantSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        tenant = services.create_tenant(
            tenant_id=data["id"],
            name=data["name"],
            admin_email=data["adminEmail"],
            password=data["password"],
            has_isolated_database=data["hasIsolatedDatabase"],
            database_server=data["databaseServer"],
            initiated_by=request.user.pk,
        )
        return _accepted(tenant.id, services.CREATION_INITIATED)


class TenantDetailView(APIView):
    permission_classes = [IsRoot]

    @extend_schema(responses=envelope_of(TenantSerializer(), "TenantEnvelope"))
    def get(self, request, tenant_id):
        return ok(TenantSerializer(_tenant_or_404(tenant_id)).data)

    @extend_schema(request=UpdateTenantSerializer, responses={202: ACCEPTED})
    def put(self, request, tenant_id):
        _tenant_or_404(tenant_id)
        body = UpdateTenantSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.update_tenant(
            tenant_id=tenant_id,
            name=body.validated_data["name"],
            is_active=body.validated_data["isActive"],
            initiated_by=request.user.pk,
        )
        return _accepted(tenant_id, UPDATE_INITIATED)

    @extend_schema(responses={202: ACCEPTED})
    def delete(self, request, tenant_id):
        _tenant_or_404(tenant_id)
        services.delete_tenant(tenant_id=tenant_id, initiated_by=request.user.pk)
        return _accepted(tenant_id, DELETION_INITIATED)


class TenantRetryView(APIView):
    permission_classes = [IsRoot]

    @extend_schema(request=None, responses={202: ACCEPTED})
    def post(self, request, tenant_id):
        _tenant_or_404(tenant_id)
        services.retry_tenant(tenant_id=tenant_id, initiated_by=request.user.pk)
        return _accepted(tenant_id, RETRY_INITIATED)


class TenantMoveView(APIView):
    permission_classes = [IsRoot]

    @extend_schema(request=MoveTenantSerializer, responses={202: ACCEPTED})
    def post(self, request, tenant_id):
        _tenant_or_404(tenant_id)
        body = MoveTenantSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.move_tenant(
            tenant_id=tenant_id, database_server=body.validated_data["databaseServer"], initiated_by=request.user.pk
        )
        return _accepted(tenant_id, MOVE_INITIATED)


TOKENS = envelope_of(TokenResponseSerializer(), "TokenEnvelope")


class AnonymousTokenEndpoint(APIView):
    """Sign-in and refresh take credentials in the body, not a bearer token; their refusals are still
    401 with a WWW-Authenticate challenge (DRF turns a 401 without one into a 403). What they answer
    holds tokens: no cache (a browser's, a proxy's) may keep it."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        add_never_cache_headers(response)
        return response


class TokenView(AnonymousTokenEndpoint):
    throttle_classes = [LoginAddressThrottle, LoginEmailThrottle]

    @extend_schema(request=TokenRequestSerializer, responses=TOKENS)
    def post(self, request):
        body = TokenRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return ok(tokens.sign_in(request.tenant.id, body.validated_data["email"], body.validated_data["password"]))


class TokenRefreshView(AnonymousTokenEndpoint):
    throttle_classes = [TokenRefreshThrottle]

    @extend_schema(request=RefreshRequestSerializer, responses=TOKENS)
    def post(self, request):
        body = RefreshRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return ok(tokens.refresh_tokens(body.validated_data["refreshToken"]))


class TokenRevokeView(APIView):
    """POST /api/tokens/revoke: sign out everywhere. Every token of the signed-in user stops working (this
    one included), refresh tokens too, and the user's open sockets close with 4401."""

    @extend_schema(request=None, responses=envelope_of(serializers.CharField(allow_null=True), "RevokedEnvelope"))
    def post(self, request):
        services.revoke_tokens(user_id=request.user.pk)
        return ok(None, [SIGNED_OUT])


class MeView(APIView):
    @extend_schema(responses=envelope_of(UserSerializer(), "UserEnvelope"))
    def get(self, request):
        return ok(UserSerializer(request.user).data)


class UserListView(APIView):
    permission_classes = [IsTenantAdmin]
    throttle_classes = [CostlyWriteThrottle]
    throttle_scope = "user_create"

    @extend_schema(responses=envelope_of(UserSerializer(many=True), "UserListEnvelope"))
    def get(self, request):
        return ok(UserSerializer(selectors.users_of(request.tenant.id), many=True).data)

    @extend_schema(request=CreateUserSerializer, responses={201: envelope_of(UserSerializer(), "CreatedUserEnvelope")})
    def post(self, request):
        body = CreateUserSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = user_services.create_user(tenant_id=request.tenant.id, **body.validated_data)
        return ok(UserSerializer(user).data, ["User created."], status_code=201)
