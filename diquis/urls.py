from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from jobs.dashboard import MOUNT, dashboard_view, django_rq_urls
from notifications.negotiate import negotiate
from notifications.routing import NEGOTIATE_PATH
from notifications.views import NotificationListView, NotificationReadView
from tenants import compat_views
from tenants import views as tenant_views

from .envelope import api_not_found
from .health import health
from .metrics import metrics_view

api = [
    path("tokens", tenant_views.TokenView.as_view()),
    path("tokens/refresh", tenant_views.TokenRefreshView.as_view()),
    path("tokens/revoke", tenant_views.TokenRevokeView.as_view()),
    path("tokens/<str:refresh_token>", compat_views.TokenRefreshByPathView.as_view()),
    path("tenants", tenant_views.TenantListView.as_view()),
    path("tenants/tenant-options", tenant_views.TenantOptionsView.as_view()),
    path("tenants/<str:tenant_id>", tenant_views.TenantDetailView.as_view()),
    path("tenants/<str:tenant_id>/retry", tenant_views.TenantRetryView.as_view()),
    path("users", tenant_views.UserListView.as_view()),
    path("users/me", tenant_views.MeView.as_view()),
    path("identity/profile", compat_views.ProfileView.as_view()),
    path("notifications", NotificationListView.as_view()),
    path("notifications/read", NotificationReadView.as_view()),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    re_path(r"^", api_not_found),
]

urlpatterns = [
    path("api/", include(api)),
    path(NEGOTIATE_PATH, negotiate),
    path("admin/rq/", include(django_rq_urls())),
    re_path(rf"^{MOUNT.strip('/')}/(?P<path>.*)$", dashboard_view),
    path("admin/", admin.site.urls),
    path("health", health),
    path("metrics", metrics_view),
]
