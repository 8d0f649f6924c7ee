from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from diquis.envelope import envelope_of, ok

from .models import Notification
from .selectors import notifications_after
from .services import mark_read

PAGE_SIZE = 500
# Notification ids are a BigAutoField: nothing larger exists, and a longer string is not a number to parse.
MAX_ID = 2**63 - 1
AFTER_RULE = f"A whole number from 0 to {MAX_ID} is required."


class NotificationSerializer(serializers.ModelSerializer):
    createdOn = serializers.DateTimeField(source="created_on")

    class Meta:
        model = Notification
        fields = ["id", "event", "data", "createdOn", "read"]


class MarkReadSerializer(serializers.Serializer):
    upTo = serializers.IntegerField(min_value=0, max_value=MAX_ID)


class NotificationListView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("after", int, required=False)],
        responses=envelope_of(NotificationSerializer(many=True), "NotificationListEnvelope"),
    )
    def get(self, request):
        after = request.query_params.get("after")
        if after is not None:
            # Digits only: DRF's IntegerField would also take "0.0" or " 7", which the schema's integer does not.
            if not after.isascii() or not after.isdigit() or len(after) > len(str(MAX_ID)) or int(after) > MAX_ID:
                raise serializers.ValidationError({"after": [AFTER_RULE]})
            after = int(after)
        items = notifications_after(user_id=request.user.pk, after=after, limit=PAGE_SIZE)
        return ok(NotificationSerializer(items, many=True).data)


class NotificationReadView(APIView):
    @extend_schema(
        request=MarkReadSerializer,
        responses=envelope_of(serializers.IntegerField(), "NotificationReadEnvelope"),
    )
    def post(self, request):
        body = MarkReadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return ok(mark_read(user_id=request.user.pk, up_to=body.validated_data["upTo"]))
