"""Request and response bodies of the tenants API, camelCase on the wire (API.md).

`min_length=1` on a field that refuses blanks anyway changes no answer: it puts `minLength` in the
OpenAPI schema, which otherwise lets clients (and the fuzzer) believe "" is acceptable."""

from collections.abc import Mapping

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from notifications.timestamps import format_utc

from .models import ASSIGNABLE_ROLES, DatabaseServer, ProvisioningStatus, Role, ServerStatus, Tenant, Upgrade, User
from .selectors import upgrade_failures, upgrade_progress_by_server
from .server_services import SERVER_NAME_MAX_LENGTH, SERVER_NAME_REGEX, URL_MAX_LENGTH, URL_SHAPE, WEIGHT_MAX
from .upgrade_services import DEFAULT_CANARY, DEFAULT_MAX_FAILURES, DEFAULT_PARALLEL
from .validators import TENANT_ID_MAX_LENGTH, TENANT_ID_REGEX, validate_tenant_id


class UTCDateTimeField(serializers.DateTimeField):
    def to_representation(self, value):
        return None if value is None else format_utc(value)


class TenantSerializer(serializers.ModelSerializer):
    isActive = serializers.BooleanField(source="is_active")
    createdOn = UTCDateTimeField(source="created_on")
    provisioningError = serializers.CharField(source="provisioning_error", allow_null=True)
    lastProvisioningAttempt = UTCDateTimeField(source="last_provisioning_attempt", allow_null=True)
    hasIsolatedDatabase = serializers.BooleanField(source="has_isolated_database")
    adminEmail = serializers.EmailField(source="admin_email")
    status = serializers.ChoiceField(choices=ProvisioningStatus.choices)
    databaseServer = serializers.CharField(source="database_server_id", allow_null=True)

    class Meta:
        model = Tenant
        fields = [
            "id",
            "name",
            "isActive",
            "createdOn",
            "status",
            "provisioningError",
            "lastProvisioningAttempt",
            "hasIsolatedDatabase",
            "adminEmail",
            "databaseServer",
        ]
        read_only_fields = fields


# The JSON type a request body's value must have for each kind of field. DRF coerces (0 -> False, "off" -> False,
# 0 -> "0", "5" -> 5), which the OpenAPI schema (type: boolean / string / integer) tells clients they may not
# send, and which would let a typo flip a tenant off.
JSON_TYPES = ((serializers.BooleanField, bool), (serializers.CharField, str), (serializers.IntegerField, int))


def _json_type_of(field):
    return next((json_type for kind, json_type in JSON_TYPES if isinstance(field, kind)), None)


class JSONBodySerializer(serializers.Serializer):
    """A request body: each value of the JSON type its field's schema states, or a 400 naming the field."""

    def to_internal_value(self, data):
        errors = self._type_errors(data) if isinstance(data, Mapping) else {}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            raise serializers.ValidationError({**error.detail, **errors}) from error
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def _type_errors(self, data):
        errors = {}
        for name, field in self.fields.items():
            value, json_type = data.get(name), _json_type_of(field)
            if value is None or json_type is None or field.read_only:
                continue  # absent or null: the field's own rules answer
            if not isinstance(value, json_type) or (json_type is int and isinstance(value, bool)):
                try:
                    field.fail("invalid", input=value)
                except serializers.ValidationError as error:
                    errors[name] = error.detail
        return errors


class TenantOptionSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()


def validate_new_password(password, *, email, field="password"):
    """Django's password validators (AUTH_PASSWORD_VALIDATORS), their lines on `field` of the request."""
    try:
        password_validation.validate_password(password, user=User(email=email or ""))
    except DjangoValidationError as error:
        raise serializers.ValidationError({field: list(error.messages)}) from error


@extend_schema_field(
    {
        "type": "string",
        "pattern": TENANT_ID_REGEX,
        "maxLength": TENANT_ID_MAX_LENGTH,
        "description": "Lowercase slug, not a reserved name (e.g. root, admin, www, api, template...).",
    }
)
class TenantIdField(serializers.CharField):
    """A new tenant's id. tenants.validators checks it (with its own messages); the schema states the
    same slug rule and length, so clients and fuzzers know it without sending a request."""

    def __init__(self, **kwargs):
        super().__init__(max_length=200, trim_whitespace=False, **kwargs)


class CreateTenantSerializer(JSONBodySerializer):
    id = TenantIdField()
    name = serializers.CharField(min_length=1, max_length=200)
    adminEmail = serializers.EmailField(max_length=254)
    password = serializers.CharField(min_length=1, max_length=128, trim_whitespace=False, write_only=True)
    hasIsolatedDatabase = serializers.BooleanField(default=False)
    databaseServer = serializers.CharField(min_length=1, max_length=50, required=False, allow_null=True, default=None)

    def validate_id(self, value):
        try:
            validate_tenant_id(value)
        except DjangoValidationError as error:
            raise serializers.ValidationError(list(error.messages)) from error
        return value

    def validate(self, attrs):
        validate_new_password(attrs["password"], email=attrs.get("adminEmail"))
        return attrs


class UpdateTenantSerializer(JSONBodySerializer):
    """The original web client sends the whole tenant object: other fields are ignored."""

    name = serializers.CharField(min_length=1, max_length=200)
    isActive = serializers.BooleanField()


class UserSerializer(serializers.ModelSerializer):
    firstName = serializers.CharField(source="first_name")
    lastName = serializers.CharField(source="last_name")
    tenant = serializers.CharField(source="tenant_id")
    isActive = serializers.BooleanField(source="is_active")

    class Meta:
        model = User
        fields = ["id", "email", "firstName", "lastName", "tenant", "roles", "isActive"]
        read_only_fields = fields


class CreateUserSerializer(JSONBodySerializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(min_length=1, max_length=128, trim_whitespace=False, write_only=True)
    # `source`: the names of tenants.user_services.create_user's arguments, which the view passes on as they are.
    firstName = serializers.CharField(source="first_name", max_length=150, required=False, allow_blank=True, default="")
    lastName = serializers.CharField(source="last_name", max_length=150, required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=ASSIGNABLE_ROLES, default=Role.BASIC)

    def validate(self, attrs):
        validate_new_password(attrs["password"], email=attrs.get("email"))
        return attrs


class TokenRequestSerializer(JSONBodySerializer):
    email = serializers.CharField(min_length=1, max_length=254)
    password = serializers.CharField(min_length=1, max_length=128, trim_whitespace=False)


class RefreshRequestSerializer(JSONBodySerializer):
    refreshToken = serializers.CharField(min_length=1, max_length=4096)


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField()
    refreshToken = serializers.CharField()
    refreshTokenExpiryTime = serializers.CharField()


class DatabaseServerSerializer(serializers.ModelSerializer):
    """A server as API.md shows it: where it is, never how to sign in to it. `main`'s host and port are the main
    database's (its row stores none); `reachable` is as last seen (`main` answers whoever reads this)."""

    host = serializers.SerializerMethodField()
    port = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=ServerStatus.choices)
    tenantCount = serializers.IntegerField(source="tenant_count", default=0)
    createdOn = UTCDateTimeField(source="created_on")
    reachable = serializers.SerializerMethodField()

    class Meta:
        model = DatabaseServer
        fields = ["name", "host", "port", "status", "weight", "tenantCount", "createdOn", "reachable"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_host(self, server):
        if server.is_main:
            return settings.DATABASES["default"].get("HOST") or None
        return server.host

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_port(self, server):
        if server.is_main:
            port = settings.DATABASES["default"].get("PORT")
            return int(port) if port else None
        return server.port

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_reachable(self, server):
        return True if server.is_main else server.reachable


@extend_schema_field(
    {
        "type": "string",
        "pattern": SERVER_NAME_REGEX,
        "maxLength": SERVER_NAME_MAX_LENGTH,
        "description": "Lowercase slug, not main.",
    }
)
class ServerNameField(serializers.CharField):
    """A new server's name; tenants.server_services checks it (with its own messages)."""

    def __init__(self, **kwargs):
        super().__init__(max_length=200, trim_whitespace=False, **kwargs)


class CreateDatabaseServerSerializer(JSONBodySerializer):
    name = ServerNameField()
    url = serializers.CharField(
        min_length=1,
        max_length=URL_MAX_LENGTH,
        trim_whitespace=False,
        write_only=True,
        help_text=f"{URL_SHAPE} (port 5432 and database postgres by default). Write-only: never shown again.",
    )
    weight = serializers.IntegerField(min_value=0, max_value=WEIGHT_MAX, default=1)


class UpdateDatabaseServerSerializer(JSONBodySerializer):
    weight = serializers.IntegerField(min_value=0, max_value=WEIGHT_MAX, required=False)
    status = serializers.ChoiceField(choices=ServerStatus.choices, required=False)


class MoveTenantSerializer(JSONBodySerializer):
    databaseServer = serializers.CharField(min_length=1, max_length=50)


class UpgradeFailureSerializer(serializers.Serializer):
    tenantId = serializers.CharField(source="tenant_id")
    error = serializers.CharField()


class UpgradeSerializer(serializers.ModelSerializer):
    """An upgrade (API.md); its counts are annotated by tenants.selectors.upgrade_list, its failures read here,
    plus `maxFailures`, `error` (why it paused or stopped) and `servers` (each server's done/failed/pending)."""

    total = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.SerializerMethodField()
    maxFailures = serializers.IntegerField(source="max_failures")
    startedOn = UTCDateTimeField(source="started_on")
    finishedOn = UTCDateTimeField(source="finished_on", allow_null=True)
    failures = serializers.SerializerMethodField()
    servers = serializers.SerializerMethodField()

    class Meta:
        model = Upgrade
        fields = [
            "id",
            "status",
            "target",
            "total",
            "done",
            "failed",
            "skipped",
            "canary",
            "parallel",
            "maxFailures",
            "startedOn",
            "finishedOn",
            "error",
            "failures",
            "servers",
        ]
        read_only_fields = fields

    def get_skipped(self, upgrade) -> int:
        return upgrade.skipped + upgrade.children_skipped

    @extend_schema_field(UpgradeFailureSerializer(many=True))
    def get_failures(self, upgrade):
        return UpgradeFailureSerializer(upgrade_failures(upgrade), many=True).data

    @extend_schema_field(serializers.DictField(child=serializers.DictField(child=serializers.IntegerField())))
    def get_servers(self, upgrade):
        return upgrade_progress_by_server(upgrade)


class UpgradeStatusSerializer(serializers.Serializer):
    head = serializers.CharField()
    atHead = serializers.IntegerField()
    behind = serializers.IntegerField()
    behindTenants = serializers.ListField(child=serializers.CharField())


class StartUpgradeSerializer(JSONBodySerializer):
    canary = serializers.IntegerField(min_value=0, required=False, default=DEFAULT_CANARY)
    parallel = serializers.IntegerField(
        min_value=1, max_value=settings.DIQUIS_UPGRADE_MAX_PARALLEL, required=False, default=DEFAULT_PARALLEL
    )
    maxFailures = serializers.IntegerField(min_value=0, required=False, default=DEFAULT_MAX_FAILURES)
