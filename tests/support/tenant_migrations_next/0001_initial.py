"""The real first migration of the tenants app, unchanged."""

from importlib import import_module

Migration = import_module("tenants.migrations.0001_initial").Migration
