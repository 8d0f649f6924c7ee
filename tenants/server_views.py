"""The database servers API (API.md, "Database servers"), root only: thin views over tenants.server_services.

A server's credentials come in once, in the registration's `url`, and are never part of any answer.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from diquis.envelope import accepted, envelope_of, found, ok

from . import selectors, server_services, services
from .permissions import IsRoot
from .serializers import CreateDatabaseServerSerializer, DatabaseServerSerializer, UpdateDatabaseServerSerializer

SERVER = envelope_of(DatabaseServerSerializer(), "DatabaseServerEnvelope")
REGISTERED = "Database server registered."
UPDATED = "Database server updated."
DRAIN_INITIATED = "Database server drain initiated. Its tenants will be moved to other servers in the background."


def _server_or_404(name):
    return found(selectors.get_database_server(name))


class DatabaseServerListView(APIView):
    permission_classes = [IsRoot]

    @extend_schema(responses=envelope_of(DatabaseServerSerializer(many=True), "DatabaseServerListEnvelope"))
    def get(self, request):
        return ok(DatabaseServerSerializer(selectors.database_servers(), many=True).data)

    @extend_schema(request=CreateDatabaseServerSerializer, responses={201: SERVER})
    def post(self, request):
        body = CreateDatabaseServerSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        server = server_services.register_server(name=data["name"], url=data["url"], weight=data["weight"])
        return ok(DatabaseServerSerializer(_server_or_404(server.name)).data, [REGISTERED], status_code=201)


class DatabaseServerDetailView(APIView):
    permission_classes = [IsRoot]

    @extend_schema(request=UpdateDatabaseServerSerializer, responses=SERVER)
    def patch(self, request, name):
        _server_or_404(name)
        body = UpdateDatabaseServerSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        server_services.update_server(
            name=name, weight=body.validated_data.get("weight"), status=body.validated_data.get("status")
        )
        return ok(DatabaseServerSerializer(_server_or_404(name)).data, [UPDATED])

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, name):
        _server_or_404(name)
        server_services.remove_server(name=name)
        return Response(status=204)


class DatabaseServerDrainView(APIView):
    permission_classes = [IsRoot]

    @extend_schema(request=None, responses={202: envelope_of(serializers.CharField(), "DrainAcceptedEnvelope")})
    def post(self, request, name):
        _server_or_404(name)
        services.drain_server(name=name, initiated_by=request.user.pk)
        return accepted(name, DRAIN_INITIATED, location=f"/api/database-servers/{name}")
