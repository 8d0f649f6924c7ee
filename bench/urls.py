from django.urls import path

from diquis.urls import urlpatterns as project_urlpatterns

from .sync_baseline import SyncCreateTenantView

urlpatterns = [path("bench/sync-tenants", SyncCreateTenantView.as_view()), *project_urlpatterns]
