"""The real migration of the tenants app that brought the database servers, unchanged."""

from importlib import import_module

Migration = import_module("tenants.migrations.0003_database_servers").Migration
