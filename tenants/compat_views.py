"""Calls of the original web client that API.md keeps for compatibility ("Compatibility calls of the
original web client"): the signed-in user's profile, and a refresh by GET. Same rules as their API.md
counterparts; only the shape of the call differs."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from diquis.envelope import envelope_of, ok

from .models import User
from .serializers import UTCDateTimeField
from .throttles import TokenRefreshThrottle
from .tokens import refresh_tokens
from .views import TOKENS, AnonymousTokenEndpoint


class ProfileSerializer(serializers.ModelSerializer):
    """The original's profile: `roleId` is the user's role name (e.g. "root"), not a database id."""

    firstName = serializers.CharField(source="first_name")
    lastName = serializers.CharField(source="last_name")
    phoneNumber = serializers.CharField(source="phone_number")
    isActive = serializers.BooleanField(source="is_active")
    roleId = serializers.SerializerMethodField()
    imageUrl = serializers.CharField(source="image_url")
    createdOn = UTCDateTimeField(source="created_on")

    class Meta:
        model = User
        fields = ["id", "firstName", "lastName", "email", "phoneNumber", "isActive", "roleId", "imageUrl", "createdOn"]
        read_only_fields = fields

    def get_roleId(self, user) -> str | None:  # noqa: N802  (the wire name)
        return user.roles[0] if user.roles else None


class ProfileView(APIView):
    @extend_schema(responses=envelope_of(ProfileSerializer(), "ProfileEnvelope"))
    def get(self, request):
        return ok(ProfileSerializer(request.user).data)


class TokenRefreshByPathView(AnonymousTokenEndpoint):
    """GET /api/tokens/{refreshToken}: the original client's refresh; answers as POST /api/tokens/refresh."""

    throttle_classes = [TokenRefreshThrottle]

    @extend_schema(responses=TOKENS)
    def get(self, request, refresh_token):
        return ok(refresh_tokens(refresh_token))
