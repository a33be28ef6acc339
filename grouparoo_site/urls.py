"""URL configuration: the admin is the management UI, the API lives under /api/v1/ (with its
OpenAPI schema at /api/v1/schema/ and browsable docs at /api/v1/docs/)."""
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("core.api.urls", namespace="api")),
]
