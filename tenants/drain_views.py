"""POST /api/database-servers/{name}/drain (API.md, "Database servers"): a thin view beside the servers' own."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.views import APIView

from diquis.envelope import envelope_of, ok

from . import services
from .models import DatabaseServer
from .permissions import IsRoot

DRAIN_INITIATED = "Database server drain initiated. Its tenants will be moved to other servers in the background."


class DatabaseServerDrainView(APIView):
    permission_classes = [IsRoot]

    @extend_schema(request=None, responses={202: envelope_of(serializers.CharField(), "DrainAcceptedEnvelope")})
    def post(self, request, name):
        if not DatabaseServer.objects.filter(pk=name).exists():
            raise NotFound()
        services.drain_server(name=name, initiated_by=request.user.pk)
        return ok(name, [DRAIN_INITIATED], status_code=202, headers={"Location": f"/api/database-servers/{name}"})
