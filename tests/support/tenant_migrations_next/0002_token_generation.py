"""The real migration of the tenants app that brought token generations, unchanged."""

from importlib import import_module

Migration = import_module("tenants.migrations.0002_token_generation").Migration
