from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from jobs.dashboard import MOUNT, dashboard_view
from jobs.django_rq_pages import django_rq_urls
from notifications.negotiate import negotiate
from notifications.routing import NEGOTIATE_PATH
from notifications.views import NotificationListView, NotificationReadView
from tenants import compat_views, identity_views, server_views, upgrade_views
from tenants import views as tenant_views

from .envelope import api_not_found
from .health import health
from .metrics import metrics_view

# Swagger UI under the Content-Security-Policy: the split view serves its start-up script as a file of its own
# (no inline script to allow), and the one inline <style> of drf-spectacular's page is allowed by its hash. An
# upgrade that changes it shows as a violation in tests/e2e/test_browser_csp.py.
SWAGGER_UI_STYLE = "'sha256-MMpT0iDxyjALd9PdfepImGX3DBfJPXZ4IlDWdPAgtn0='"
swagger_ui = csp_update({"style-src": [SWAGGER_UI_STYLE]})(SpectacularSwaggerSplitView.as_view(url_name="schema"))

api = [
    path("tokens", tenant_views.TokenView.as_view()),
    path("tokens/refresh", tenant_views.TokenRefreshView.as_view()),
    path("tokens/revoke", tenant_views.TokenRevokeView.as_view()),
    path("tokens/<str:refresh_token>", compat_views.TokenRefreshByPathView.as_view()),
    path("tenants", tenant_views.TenantListView.as_view()),
    path("tenants/tenant-options", tenant_views.TenantOptionsView.as_view()),
    path("tenants/upgrade-status", upgrade_views.UpgradeStatusView.as_view()),
    path("tenants/<str:tenant_id>", tenant_views.TenantDetailView.as_view()),
    path("tenants/<str:tenant_id>/retry", tenant_views.TenantRetryView.as_view()),
    path("tenants/<str:tenant_id>/move", tenant_views.TenantMoveView.as_view()),
    path("database-servers", server_views.DatabaseServerListView.as_view()),
    path("database-servers/<str:name>", server_views.DatabaseServerDetailView.as_view()),
    path("database-servers/<str:name>/drain", server_views.DatabaseServerDrainView.as_view()),
    path("upgrades", upgrade_views.UpgradeListView.as_view()),
    path("upgrades/<int:upgrade_id>", upgrade_views.UpgradeDetailView.as_view()),
    *(path(f"upgrades/<int:upgrade_id>/{view.action}", view.as_view()) for view in upgrade_views.ACTION_VIEWS),
    path("users", tenant_views.UserListView.as_view()),
    path("users/me", tenant_views.MeView.as_view()),
    path("identity/users", identity_views.IdentityUserListView.as_view()),
    path("identity/users/<str:user_id>", identity_views.IdentityUserDetailView.as_view()),
    path("identity/profile", identity_views.ProfileView.as_view()),
    path("identity/change-password", identity_views.ChangePasswordView.as_view()),
    path("identity/preferences", identity_views.PreferencesView.as_view()),
    path("identity/forgot-password", identity_views.ForgotPasswordView.as_view()),
    path("identity/reset-password", identity_views.ResetPasswordView.as_view()),
    path("notifications", NotificationListView.as_view()),
    path("notifications/read", NotificationReadView.as_view()),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", swagger_ui, name="swagger-ui"),
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
