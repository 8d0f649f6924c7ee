"""Request and response bodies of the original web client's /api/identity/* calls, in its own shapes
(camelCase, `roleId` a role name): what it sends and what it reads, field by field."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import ASSIGNABLE_ROLES, Role, User
from .serializers import JSONBodySerializer, UTCDateTimeField, validate_new_password
from .user_services import preferences_of

PASSWORDS_DIFFER = "Passwords do not match."


class IdentityUserSerializer(serializers.ModelSerializer):
    """The original's User: `roleId` is the user's role name (e.g. "root"), not a database id."""

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


class PreferencesSerializer(JSONBodySerializer):
    """The web client's preferences: its theme and the page size of its tables."""

    darkModeDefault = serializers.BooleanField(source="dark_mode_default")
    pageSizeDefault = serializers.IntegerField(source="page_size_default", min_value=1, max_value=100)


class ProfileSerializer(IdentityUserSerializer):
    """The signed-in user as the original's profile, plus the preferences it saved (PUT /api/identity/preferences):
    a browser the user signs in from next restores them from here."""

    preferences = serializers.SerializerMethodField()

    class Meta(IdentityUserSerializer.Meta):
        fields = [*IdentityUserSerializer.Meta.fields, "preferences"]
        read_only_fields = fields

    @extend_schema_field(PreferencesSerializer())
    def get_preferences(self, user):
        return PreferencesSerializer(preferences_of(user)).data


# The bodies' fields carry the names of tenants.user_services' arguments (`source`): a view passes them on as
# they are, `**validated_data`.


def _name_field(source, **kwargs):
    return serializers.CharField(source=source, max_length=150, allow_blank=True, **kwargs)


def _phone_field():
    return serializers.CharField(
        source="phone_number", max_length=50, required=False, allow_blank=True, allow_null=True, default=""
    )


def _password_field(**kwargs):
    return serializers.CharField(min_length=1, max_length=128, trim_whitespace=False, write_only=True, **kwargs)


class CreateIdentityUserSerializer(JSONBodySerializer):
    """The original's RegisterUserRequest; `roleId` defaults to basic, as its form does."""

    firstName = _name_field("first_name", required=False, default="")
    lastName = _name_field("last_name", required=False, default="")
    email = serializers.EmailField(max_length=254)
    password = _password_field()
    phoneNumber = _phone_field()
    roleId = serializers.ChoiceField(source="role", choices=ASSIGNABLE_ROLES, default=Role.BASIC)

    def validate(self, attrs):
        validate_new_password(attrs["password"], email=attrs.get("email"))
        return attrs


class UpdateIdentityUserSerializer(JSONBodySerializer):
    """The whole User object, as the client sends it back: `id`, `imageUrl` and `createdOn` are not changed here
    (the path names the user)."""

    firstName = _name_field("first_name")
    lastName = _name_field("last_name")
    email = serializers.EmailField(max_length=254)
    phoneNumber = _phone_field()
    isActive = serializers.BooleanField(source="is_active")
    roleId = serializers.ChoiceField(source="role", choices=ASSIGNABLE_ROLES)


class UpdateProfileSerializer(JSONBodySerializer):
    """The original's UpdateProfileRequest; its `id` is the signed-in user's, whatever it says."""

    firstName = _name_field("first_name")
    lastName = _name_field("last_name")
    email = serializers.EmailField(max_length=254)
    phoneNumber = _phone_field()


class ChangePasswordSerializer(JSONBodySerializer):
    """`password` is the current one; the new one passes Django's validators (the signed-in user is `context`'s)."""

    password = _password_field()
    newPassword = _password_field()
    confirmNewPassword = _password_field()

    def validate(self, attrs):
        if attrs["newPassword"] != attrs["confirmNewPassword"]:
            raise serializers.ValidationError({"confirmNewPassword": [PASSWORDS_DIFFER]})
        validate_new_password(attrs["newPassword"], email=self.context["user"].email, field="newPassword")
        return attrs


class TenantNamedInBody(JSONBodySerializer):
    """The anonymous calls of the original client name their tenant in the body too: it must be the request's
    (resolved as for every call: the `tenant` header or the subdomain; `context["tenant"]`)."""

    tenant = serializers.CharField(max_length=50, required=False, allow_blank=True, allow_null=True)

    def validate_tenant(self, value):
        if value and value != self.context["tenant"].id:
            raise serializers.ValidationError("Must be the tenant of the request (its `tenant` header).")
        return value


class ForgotPasswordSerializer(TenantNamedInBody):
    email = serializers.EmailField(max_length=254)


class ResetPasswordSerializer(TenantNamedInBody):
    email = serializers.EmailField(max_length=254)
    token = serializers.CharField(min_length=1, max_length=200, trim_whitespace=False)
    password = _password_field()
    confirmPassword = _password_field()

    def validate(self, attrs):
        if attrs["password"] != attrs["confirmPassword"]:
            raise serializers.ValidationError({"confirmPassword": [PASSWORDS_DIFFER]})
        validate_new_password(attrs["password"], email=attrs["email"])
        return attrs
