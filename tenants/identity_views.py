"""The original web client's /api/identity/* calls: its Users page (an admin's), its profile, password and
preferences pages (every user's own), and its forgotten-password pages (anonymous).

Tenant-scoped as /api/users: the request's tenant (token, subdomain or `tenant` header) is the only one looked
in, so another tenant's user is a 404 for everyone. Who may call what is /api/users' rule (IsTenantAdmin) for
the users, and "signed in" for one's own profile. The rules themselves are tenants.user_services'.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from diquis.envelope import envelope_of, found, ok

from . import selectors, user_services
from .identity_serializers import (
    ChangePasswordSerializer,
    CreateIdentityUserSerializer,
    ForgotPasswordSerializer,
    IdentityUserSerializer,
    PreferencesSerializer,
    ProfileSerializer,
    ResetPasswordSerializer,
    UpdateIdentityUserSerializer,
    UpdateProfileSerializer,
)
from .permissions import IsTenantAdmin
from .throttles import (
    CostlyWriteThrottle,
    PasswordChangeThrottle,
    PasswordResetAddressThrottle,
    PasswordResetEmailThrottle,
)

RESET_MAIL_SENT = "If this email is a user's of the tenant, a password reset mail is on its way to it."
PASSWORD_RESET = "Password reset: sign in with the new password."
PASSWORD_CHANGED = "Password updated: sign in again with the new password."
PREFERENCES_SAVED = "Preferences updated."
USER_CREATED = "User created."
USER_DELETED = "User deleted."
RESET_PATH = "/api/identity/reset-password"

USER = envelope_of(IdentityUserSerializer(), "IdentityUserEnvelope")
PROFILE = envelope_of(ProfileSerializer(), "ProfileEnvelope")
NO_DATA = envelope_of(serializers.CharField(allow_null=True), "IdentityNoDataEnvelope")


def _valid(serializer_class, request, **context):
    body = serializer_class(data=request.data, context=context)
    body.is_valid(raise_exception=True)
    return body.validated_data


def _user_of_tenant(request, user_id):
    return found(selectors.user_of(request.tenant.id, user_id))


class IdentityUserListView(APIView):
    permission_classes = [IsTenantAdmin]
    throttle_classes = [CostlyWriteThrottle]
    throttle_scope = "user_create"  # one budget with POST /api/users: both hash a password

    @extend_schema(responses=envelope_of(IdentityUserSerializer(many=True), "IdentityUserListEnvelope"))
    def get(self, request):
        return ok(IdentityUserSerializer(selectors.users_newest_first(request.tenant.id), many=True).data)

    @extend_schema(request=CreateIdentityUserSerializer, responses={201: USER})
    def post(self, request):
        user = user_services.create_user(tenant_id=request.tenant.id, **_valid(CreateIdentityUserSerializer, request))
        return ok(IdentityUserSerializer(user).data, [USER_CREATED], status_code=201)


class IdentityUserDetailView(APIView):
    permission_classes = [IsTenantAdmin]

    @extend_schema(responses=USER)
    def get(self, request, user_id):
        return ok(IdentityUserSerializer(_user_of_tenant(request, user_id)).data)

    @extend_schema(request=UpdateIdentityUserSerializer, responses=USER)
    def put(self, request, user_id):
        user = _user_of_tenant(request, user_id)
        user_services.update_user(user=user, acting_user=request.user, **_valid(UpdateIdentityUserSerializer, request))
        return ok(IdentityUserSerializer(user).data)

    @extend_schema(responses={200: envelope_of(serializers.CharField(), "IdentityUserDeletedEnvelope")})
    def delete(self, request, user_id):
        user = _user_of_tenant(request, user_id)
        deleted_id = str(user.pk)
        user_services.delete_user(user=user, acting_user=request.user)
        return ok(deleted_id, [USER_DELETED])


class ProfileView(APIView):
    @extend_schema(responses=PROFILE)
    def get(self, request):
        return ok(ProfileSerializer(request.user).data)

    @extend_schema(request=UpdateProfileSerializer, responses=PROFILE)
    def put(self, request):
        user = user_services.update_profile(user=request.user, **_valid(UpdateProfileSerializer, request))
        return ok(ProfileSerializer(user).data)


class ChangePasswordView(APIView):
    """Every token of the user stops working with the new password, this one included (README, "Security")."""

    throttle_classes = [PasswordChangeThrottle]

    @extend_schema(request=ChangePasswordSerializer, responses=NO_DATA)
    def put(self, request):
        data = _valid(ChangePasswordSerializer, request, user=request.user)
        user_services.change_password(
            user=request.user, current_password=data["password"], new_password=data["newPassword"]
        )
        return ok(None, [PASSWORD_CHANGED])


class PreferencesView(APIView):
    @extend_schema(request=PreferencesSerializer, responses=NO_DATA)
    def put(self, request):
        data = _valid(PreferencesSerializer, request)
        user_services.update_preferences(user=request.user, **data)
        return ok(None, [PREFERENCES_SAVED])


class ForgottenPasswordEndpoint(APIView):
    """Anonymous, throttled as sign-in is (per client address and per tenant and email, budgets of their own)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [PasswordResetAddressThrottle, PasswordResetEmailThrottle]


class ForgotPasswordView(ForgottenPasswordEndpoint):
    """The same answer, after the same work, whether the email is a user's or not."""

    @extend_schema(request=ForgotPasswordSerializer, responses=NO_DATA)
    def post(self, request):
        data = _valid(ForgotPasswordSerializer, request, tenant=request.tenant)
        user_services.request_password_reset(
            tenant_id=request.tenant.id, email=data["email"], reset_endpoint=request.build_absolute_uri(RESET_PATH)
        )
        return ok(None, [RESET_MAIL_SENT])


class ResetPasswordView(ForgottenPasswordEndpoint):
    @extend_schema(request=ResetPasswordSerializer, responses=NO_DATA)
    def post(self, request):
        data = _valid(ResetPasswordSerializer, request, tenant=request.tenant)
        user_services.reset_password(
            tenant_id=request.tenant.id, email=data["email"], token=data["token"], password=data["password"]
        )
        return ok(None, [PASSWORD_RESET])
