"""/api/v1/: one DefaultRouter for every resource, plus status, the OpenAPI schema and its
browsable documentation. Included by grouparoo_site/urls.py under the "api" namespace."""

from __future__ import annotations

from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from core.api import views

app_name = "api"


class Router(DefaultRouter):
    APIRootView = views.ApiRootView


router = Router()
router.register("models", views.RecordModelViewSet, basename="model")
router.register("apps", views.AppViewSet, basename="app")
router.register("app-refresh-queries", views.AppRefreshQueryViewSet, basename="app-refresh-query")
router.register("sources", views.SourceViewSet, basename="source")
router.register("properties", views.PropertyViewSet, basename="property")
router.register("schedules", views.ScheduleViewSet, basename="schedule")
router.register("records", views.RecordViewSet, basename="record")
router.register("groups", views.GroupViewSet, basename="group")
router.register("destinations", views.DestinationViewSet, basename="destination")
router.register("runs", views.RunViewSet, basename="run")
router.register("imports", views.ImportViewSet, basename="import")
router.register("exports", views.ExportViewSet, basename="export")
router.register("api-keys", views.ApiKeyViewSet, basename="api-key")
router.register("settings", views.SettingViewSet, basename="setting")

urlpatterns = [
    re_path(r"^status/?$", views.StatusView.as_view(), name="status"),
    path("schema/", views.SchemaView.as_view(), name="schema"),
    path("docs/", views.DocsView.as_view(url_name="api:schema"), name="docs"),
    *router.urls,
]
