"""The API's views: thin ViewSets over the services (STYLE.md 8.5).

Every view declares `api_topic` (checked when the class is defined). CRUD goes through the
serializers (which validate like the admin's forms); saves that imply work start it through the
same services as the admin's `save_related`: a group -> `group_recompute_enqueue`, a property ->
`property_changed`, a destination -> `destination_resync_enqueue`. Operations that are not CRUD
are POST actions; those that start a Run answer 202 with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import mixins, parsers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.generics import get_object_or_404
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import APIRootView
from rest_framework.views import APIView

from connectors import registry
from connectors.base import ConnectorError
from core import models as m
from core.api import filters
from core.api import serializers as s
from core.api import serializers_actions as a
from core.api import serializers_records as sr
from core.api import serializers_sources as ss
from core.api.exceptions import BadGateway, BadRequest, Conflict, JSONParser
from core.api.permissions import (
    ANY_TOPIC,
    HasTopicPermission,
    NotManagedByConfigFile,
    check_expiry,
    check_grants,
    check_may_manage,
    raise_if_locked,
    view_topic,
)
from core.choices import ApiTopic, ExportState, RunState
from core.crypto import SecretUnavailable

ERRORS = {
    400: OpenApiResponse(a.MessageOutput, description="Invalid input"),
    401: OpenApiResponse(a.MessageOutput, description="Missing or invalid API key"),
    403: OpenApiResponse(a.MessageOutput, description="The key lacks the topic's permission"),
}
CONNECTOR_ERRORS = {
    **ERRORS,
    502: OpenApiResponse(a.MessageOutput, description="The connector failed; message says why"),
}


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes the key in the OpenAPI schema as an HTTP bearer token."""

    target_class = "core.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "grp_<prefix>.<secret>",
            "description": "An API key (created in the admin or with manage.py create_api_key); "
            "also accepted in the X-Api-Key header.",
        }


class Pagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000


class ApiViewMixin:
    """Requires `api_topic` on every concrete view class (ImproperlyConfigured at import)."""

    api_topic: ClassVar[str | None] = None
    # "read" or "write" overrides the method's access (e.g. a POST that changes nothing).
    api_access: ClassVar[str | None] = None
    abstract_view: ClassVar[bool] = True
    parser_classes: ClassVar[list[type]] = [JSONParser, parsers.FormParser, parsers.MultiPartParser]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("abstract_view", False):
            view_topic(cls)


@contextmanager
def connector_errors() -> Iterator[None]:
    """ConnectorError -> 502 with its (user-safe) message; unresolvable secrets and unknown
    connector types -> 400."""
    try:
        yield
    except ConnectorError as exc:
        raise BadGateway(exc.message) from exc
    except SecretUnavailable as exc:
        raise BadRequest(str(exc)) from exc
    except registry.UnknownConnector as exc:
        raise BadRequest(str(exc)) from exc


def read_input(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data if isinstance(request.data, dict) else {})
    if not isinstance(request.data, dict):
        raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def export_states(record_id: int) -> dict[str, str]:
    """{destination id: state of the record's newest export there} (canceled ones skipped)."""
    out: dict[str, str] = {}
    rows = (
        m.Export.objects.filter(record_id=record_id)
        .exclude(state=ExportState.CANCELED)
        .order_by("destination_id", "-pk")
        .values_list("destination_id", "state")
    )
    for destination_id, state in rows:
        out.setdefault(str(destination_id), state)
    return out


class WriteHooksMixin:
    """Writes are atomic and may start work (`after_save`). Listed before DRF's mixins so that
    its perform_* methods are the ones used."""

    def perform_create(self, serializer: serializers.Serializer) -> None:
        with transaction.atomic():
            self.check_create_lock(serializer.validated_data)
            serializer.save()
            self.after_save(serializer)

    def perform_update(self, serializer: serializers.Serializer) -> None:
        with transaction.atomic():
            serializer.save()
            self.after_save(serializer)

    def perform_destroy(self, instance: Any) -> None:
        """Deletes through core.services.usage: a property, group or source something uses is
        refused (409 listing the users; see core.api.exceptions)."""
        from core.services.usage import delete_unless_used

        delete_unless_used(obj=instance)

    def check_create_lock(self, data: dict[str, Any]) -> None:
        """Refuse creating a row under a parent managed by a config file (none by default)."""

    def after_save(self, serializer: serializers.Serializer) -> None:
        """Start the work a save implies (nothing by default)."""


class BaseViewSet(ApiViewMixin, viewsets.GenericViewSet):
    """Pagination, filters, ordering, topic and config-file lock for every resource."""

    abstract_view = True
    permission_classes = [HasTopicPermission, NotManagedByConfigFile]
    pagination_class = Pagination
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    ordering_fields = ["id", "created_at", "updated_at"]
    ordering = ["id"]

    def parent_object(self, model: type[m.Record] | type[m.Group]) -> Any:
        """The object of a nested list action (whose `queryset` is the listed rows' one)."""
        obj = get_object_or_404(model.objects.all(), pk=self.kwargs["pk"])
        self.check_object_permissions(self.request, obj)
        return obj

    def paginated(self, queryset: QuerySet, serializer_class: type) -> Response:
        page = self.paginate_queryset(self.filter_queryset(queryset))
        return self.get_paginated_response(
            serializer_class(page, many=True, context=self.get_serializer_context()).data
        )


class ConfigViewSet(WriteHooksMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                    mixins.DestroyModelMixin, mixins.ListModelMixin, BaseViewSet):
    """CRUD of a configuration object."""

    abstract_view = True


class ReadOnlyViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, BaseViewSet):
    """A log the engine writes: list and retrieve only."""

    abstract_view = True


# --- configuration --------------------------------------------------------------------------


class RecordModelViewSet(ConfigViewSet):
    """Models: the kinds of records (customers, accounts...)."""

    api_topic = ApiTopic.MODELS
    queryset = m.RecordModel.objects.all()
    serializer_class = s.RecordModelSerializer
    filterset_class = filters.RecordModelFilter
    ordering_fields = ["id", "name", "created_at", "updated_at"]


class AppViewSet(ConfigViewSet):
    """Apps: connections to databases and services. `secret_options` are write-only."""

    api_topic = ApiTopic.APPS
    queryset = m.App.objects.select_related("refresh_query")
    serializer_class = s.AppSerializer
    filterset_class = filters.AppFilter
    ordering_fields = ["id", "name", "created_at", "updated_at"]

    @extend_schema(request=None, responses={200: a.TestConnectionOutput, **CONNECTOR_ERRORS})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Connect with the app's options and run a trivial request. Changes nothing."""
        from core.services.apps import app_test_connection

        app = self.get_object()
        with connector_errors():
            message = app_test_connection(app=app)
        return Response({"success": True, "message": message})


class AppRefreshQueryViewSet(ConfigViewSet):
    """App Refresh Queries: when the query's value changes, the app's schedules run. Part of
    their app: locked when the app is."""

    api_topic = ApiTopic.APPS
    queryset = m.AppRefreshQuery.objects.select_related("app")
    serializer_class = s.AppRefreshQuerySerializer
    filterset_class = filters.AppRefreshQueryFilter

    def check_create_lock(self, data: dict[str, Any]) -> None:
        raise_if_locked(data.get("app"))


class SourceViewSet(ConfigViewSet):
    """Sources with their mapping (source column -> unique property)."""

    api_topic = ApiTopic.SOURCES
    queryset = m.Source.objects.select_related("schedule").prefetch_related("mappings")
    serializer_class = ss.SourceSerializer
    filterset_class = filters.SourceFilter
    ordering_fields = ["id", "name", "created_at", "updated_at"]

    @extend_schema(request=a.PreviewInput, responses={200: a.PreviewOutput, **CONNECTOR_ERRORS})
    @action(detail=True, methods=["post"], api_access="read")
    def preview(self, request: Request, pk: str | None = None) -> Response:
        """A few rows of the source, read through its connector.

        A key that may only *read* sources may call it, although it runs the source's own SQL:
        that is acceptable only because the preview is as read only as a run, structurally
        (connectors/sql.py: a read-only connection, one statement per call, the statement
        timeout; tests/security/test_query_sources_read_only.py). The input is validated
        before the source is touched: a request answered 400 has run nothing."""
        from core.services.sources import source_preview

        source = self.get_object()
        data = read_input(a.PreviewInput, request)
        with connector_errors():
            rows = source_preview(source=source, limit=data["limit"])
        columns: list[str] = []
        for row in rows:
            columns.extend(str(c) for c in row if str(c) not in columns)
        return Response({"columns": columns, "rows": rows})

    @extend_schema(responses={200: a.ColumnOutput(many=True), **CONNECTOR_ERRORS})
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def columns(self, request: Request, pk: str | None = None) -> Response:
        """The source's columns and the filter operations each allows."""
        from core.services.sources import source_list_columns

        source = self.get_object()
        with connector_errors():
            columns = source_list_columns(source=source)
        return Response(
            [{"name": c.name, "type": c.type, "filter_ops": list(c.filter_ops)} for c in columns]
        )


class PropertyViewSet(ConfigViewSet):
    """Properties with their filters. Creating or changing one starts a full run of its source
    (`property_changed`), so every record gets the new value."""

    api_topic = ApiTopic.PROPERTIES
    queryset = m.Property.objects.prefetch_related("filters")
    serializer_class = ss.PropertySerializer
    filterset_class = filters.PropertyFilterSet
    ordering_fields = ["id", "key", "created_at", "updated_at"]

    def after_save(self, serializer: serializers.Serializer) -> None:
        if getattr(serializer, "changed", False):
            from core.services.sources import property_changed

            property_changed(prop=serializer.instance)


class ScheduleViewSet(ConfigViewSet):
    """Schedules (one per source) with their filters, and "run now"."""

    api_topic = ApiTopic.SCHEDULES
    queryset = m.Schedule.objects.prefetch_related("filters")
    serializer_class = ss.ScheduleSerializer
    filterset_class = filters.ScheduleFilterSet

    @extend_schema(request=a.ScheduleRunInput, responses={202: s.RunSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def run(self, request: Request, pk: str | None = None) -> Response:
        """Start a run of the schedule's source (`{"full": true}` ignores the high watermark).
        While a run of the source is active, answers with that run instead of a new one."""
        from core.services.runs import run_enqueue

        schedule = self.get_object()
        data = read_input(a.ScheduleRunInput, request)
        run = run_enqueue(schedule=schedule, full=data["full"])
        return Response(s.RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class GroupViewSet(ConfigViewSet):
    """Groups with their rules. Creating or changing one (or its rules) starts a recompute."""

    api_topic = ApiTopic.GROUPS
    queryset = m.Group.objects.prefetch_related("rules")
    serializer_class = sr.GroupSerializer
    filterset_class = filters.GroupFilter
    ordering_fields = ["id", "name", "member_count", "created_at", "updated_at"]

    def after_save(self, serializer: serializers.Serializer) -> None:
        if getattr(serializer, "changed", False):
            from core.services.groups import group_recompute_enqueue

            group_recompute_enqueue(group=serializer.instance)

    @extend_schema(request=None, responses={202: s.RunSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def recompute(self, request: Request, pk: str | None = None) -> Response:
        """Recompute the group's members (and export what changed). While a recompute of the
        group is active, answers with that run."""
        from core.services.groups import group_recompute_enqueue

        run = group_recompute_enqueue(group=self.get_object())
        return Response(s.RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: sr.GroupMemberSerializer(many=True), **ERRORS})
    @action(detail=True, methods=["get"], filterset_class=filters.GroupMemberFilter,
            queryset=m.GroupMember.objects.all(), ordering_fields=["id", "joined_at", "left_at"])
    def members(self, request: Request, pk: str | None = None) -> Response:
        """The group's members (`?current=true` for the current ones only)."""
        group = self.parent_object(m.Group)
        return self.paginated(m.GroupMember.objects.filter(group=group), sr.GroupMemberSerializer)


class DestinationViewSet(ConfigViewSet):
    """Destinations with their mapping and group memberships. `secret_options` are write-only.
    A change re-evaluates the destination's records (`destination_resync_enqueue`)."""

    api_topic = ApiTopic.DESTINATIONS
    queryset = m.Destination.objects.prefetch_related("mappings", "group_memberships")
    serializer_class = sr.DestinationSerializer
    filterset_class = filters.DestinationFilter
    ordering_fields = ["id", "name", "created_at", "updated_at"]

    def after_save(self, serializer: serializers.Serializer) -> None:
        if getattr(serializer, "changed", False):
            from core.services.destinations import destination_resync_enqueue

            destination_resync_enqueue(destination=serializer.instance)

    @extend_schema(request=a.RetryFailedInput, responses={202: a.RetryFailedOutput, **ERRORS})
    @action(detail=True, methods=["post"], url_path="retry-failed")
    def retry_failed(self, request: Request, pk: str | None = None) -> Response:
        """Queue the destination's failed exports again (optionally only those created in
        [since, until]), unless a newer export of the same record exists."""
        from core.services.exports import exports_retry_failed

        destination = self.get_object()
        data = read_input(a.RetryFailedInput, request)
        count = exports_retry_failed(
            destination=destination, since=data.get("since"), until=data.get("until")
        )
        return Response({"retried": count}, status=status.HTTP_202_ACCEPTED)


# --- records and logs -----------------------------------------------------------------------


class RecordViewSet(WriteHooksMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin, mixins.DestroyModelMixin,
                    BaseViewSet):
    """Records with their properties and current groups. Records are written by sources:
    `POST /records/import/` imports one now by a unique value."""

    api_topic = ApiTopic.RECORDS
    queryset = m.Record.objects.prefetch_related(
        Prefetch(
            "properties",
            queryset=m.RecordProperty.objects.select_related("property").order_by(
                "property__key", "position"
            ),
        ),
        Prefetch(
            "memberships",
            queryset=m.GroupMember.objects.filter(left_at__isnull=True)
            .select_related("group")
            .order_by("group__name", "group_id"),
            to_attr="current_memberships",
        ),
    )
    serializer_class = sr.RecordSerializer
    filterset_class = filters.RecordFilter

    @extend_schema(
        request=a.RecordImportInput,
        responses={200: a.RecordImportOutput, 404: a.MessageOutput, **CONNECTOR_ERRORS},
    )
    @action(detail=False, methods=["post"], url_path="import", filter_backends=[],
            pagination_class=None)
    def import_record(self, request: Request) -> Response:
        """Import one record now by a unique property value (like `grouparoo sync <value>`):
        read every source of the model for it, update its properties and groups, and (unless
        `export` is false) send its exports. 404 when no source has the value. Idempotent."""
        from core.engine.single import RecordNotFound, record_import_now

        data = read_input(a.RecordImportInput, request)
        try:
            with connector_errors():
                record = record_import_now(
                    model=data["model"], property_key=data["property"], value=data["value"],
                    export=data["export"],
                )
        except RecordNotFound as exc:
            from rest_framework.exceptions import NotFound

            raise NotFound(str(exc)) from exc
        except ValueError as exc:
            raise serializers.ValidationError({"value": [str(exc)]}) from exc
        record = self.get_queryset().get(pk=record.pk)
        return Response({
            "record": record.pk,
            "exports": export_states(record.pk),
            "data": sr.RecordSerializer(record, context=self.get_serializer_context()).data,
        })

    @extend_schema(request=None, responses={200: a.RecordExportOutput, **CONNECTOR_ERRORS})
    @action(detail=True, methods=["post"])
    def export(self, request: Request, pk: str | None = None) -> Response:
        """Build the record's exports (where its data changed) and send them now. Idempotent."""
        from core.engine.single import record_export_now

        record = self.get_object()
        with connector_errors():
            record_export_now(record=record)
        return Response({"record": record.pk, "exports": export_states(record.pk)})

    @extend_schema(responses={200: s.ImportSerializer(many=True), **ERRORS})
    @action(detail=True, methods=["get"], api_topic=ApiTopic.IMPORTS,
            filterset_class=filters.ImportFilter, queryset=m.Import.objects.all(),
            ordering_fields=["id", "created_at"])
    def imports(self, request: Request, pk: str | None = None) -> Response:
        """The imports (run batches) that read this record. Needs read permission on imports."""
        record = self.parent_object(m.Record)
        queryset = filters.imports_of_record(m.Import.objects.all(), record.pk)
        return self.paginated(queryset, s.ImportSerializer)

    @extend_schema(responses={200: s.ExportSerializer(many=True), **ERRORS})
    @action(detail=True, methods=["get"], api_topic=ApiTopic.EXPORTS,
            filterset_class=filters.ExportFilter, queryset=m.Export.objects.all())
    def exports(self, request: Request, pk: str | None = None) -> Response:
        """The record's exports. Needs read permission on exports."""
        record = self.parent_object(m.Record)
        return self.paginated(m.Export.objects.filter(record=record), s.ExportSerializer)


class RunViewSet(ReadOnlyViewSet):
    """Runs: a live view of imports, group recomputes and exports in progress, and their
    history. `POST /runs/{id}/stop/` stops an active one."""

    api_topic = ApiTopic.RUNS
    queryset = m.Run.objects.all()
    serializer_class = s.RunSerializer
    filterset_class = filters.RunFilter
    ordering = ["-id"]

    @extend_schema(request=None, responses={200: s.RunSerializer, 409: a.MessageOutput, **ERRORS})
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str | None = None) -> Response:
        """Stop a pending or running run; its worker stops at the next batch boundary and
        committed batches stay. Stopping a stopped run again is a no-op; a finished run -> 409."""
        from core.services.runs import run_stop

        run = self.get_object()
        if not run_stop(run=run):
            run.refresh_from_db()
            if run.state != RunState.STOPPED:
                raise Conflict(f"Run {run.pk} is {run.state}: only a pending or running run can be stopped.")
        run.refresh_from_db()
        return Response(s.RunSerializer(run).data)


class ImportViewSet(ReadOnlyViewSet):
    """Imports: what each batch of a run read (`?record=<id>` for the batches that read a
    record)."""

    api_topic = ApiTopic.IMPORTS
    queryset = m.Import.objects.all()
    serializer_class = s.ImportSerializer
    filterset_class = filters.ImportFilter
    ordering_fields = ["id", "created_at"]
    ordering = ["-id"]


class ExportViewSet(ReadOnlyViewSet):
    """Exports: what was (or is to be) sent to each destination for each record."""

    api_topic = ApiTopic.EXPORTS
    queryset = m.Export.objects.all()
    serializer_class = s.ExportSerializer
    filterset_class = filters.ExportFilter
    ordering = ["-id"]


# --- access ---------------------------------------------------------------------------------


class ApiKeyViewSet(ConfigViewSet):
    """API keys. Creating one answers with its plaintext `key`, the only time it is ever shown;
    afterwards only its prefix is. `POST /api-keys/{id}/revoke/` revokes it."""

    api_topic = ApiTopic.API_KEYS
    queryset = m.ApiKey.objects.select_related("created_by").prefetch_related("permissions")
    serializer_class = s.ApiKeySerializer
    filterset_class = filters.ApiKeyFilter
    ordering_fields = ["id", "name", "created_at", "updated_at", "last_used_at"]

    @extend_schema(responses={201: s.ApiKeyCreatedSerializer, **ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        from core.services.api_keys import api_key_create, api_key_grants_after

        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        rows = data.pop("permissions", [])
        requested = api_key_grants_after(
            api_key=None, all_read=data.get("permission_all_read"),
            all_write=data.get("permission_all_write"), rows=rows,
        )
        check_grants(request, requested=requested)
        check_expiry(request, data.get("expires_at"))
        user = request.user if getattr(request.user, "pk", None) else None
        with transaction.atomic():
            api_key, key = api_key_create(name=data.pop("name"), created_by=user, **data)
            s.replace_children(parent=api_key, related_name="permissions", rows=rows)
        api_key = self.get_queryset().get(pk=api_key.pk)
        api_key.key = key
        body = s.ApiKeyCreatedSerializer(api_key, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: serializers.Serializer) -> None:
        """Only a key within the caller's permissions is changed (check_may_manage); widening it
        is limited to what the caller holds (check_grants), and its expiry to the caller's
        own (check_expiry)."""
        from core.services.api_keys import api_key_grants, api_key_grants_after

        instance, data = serializer.instance, serializer.validated_data
        requested = api_key_grants_after(
            api_key=instance, all_read=data.get("permission_all_read"),
            all_write=data.get("permission_all_write"), rows=data.get("permissions"),
        )
        check_may_manage(self.request, instance)
        current = api_key_grants(instance)
        check_grants(self.request, requested=requested, current=current)
        # Giving a key permissions is giving them for as long as it lives: a key that expires
        # may not hand permissions to one that outlives it, whether or not expires_at is sent.
        if "expires_at" in data or requested != current:
            check_expiry(self.request, data.get("expires_at", instance.expires_at))
        super().perform_update(serializer)

    def perform_destroy(self, instance: m.ApiKey) -> None:
        """Only keys within the caller's own permissions are deleted (any key may be revoked)."""
        check_may_manage(self.request, instance)
        super().perform_destroy(instance)

    @extend_schema(request=None, responses={200: s.ApiKeySerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        """Revoke the key now (idempotent). Allowed on keys managed by a config file too: a
        leaked key must be stoppable at once."""
        from core.services.api_keys import api_key_revoke

        api_key = self.get_object()
        api_key_revoke(api_key=api_key)
        api_key.refresh_from_db()
        return Response(s.ApiKeySerializer(api_key, context=self.get_serializer_context()).data)


class SettingViewSet(WriteHooksMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, mixins.ListModelMixin,
                     BaseViewSet):
    """Runtime settings: read them, change their value."""

    api_topic = ApiTopic.SETTINGS
    queryset = m.Setting.objects.all()
    serializer_class = s.SettingSerializer
    filterset_class = filters.SettingFilter
    ordering_fields = ["id", "plugin", "key", "created_at", "updated_at"]


# --- system ---------------------------------------------------------------------------------


class StatusView(ApiViewMixin, APIView):
    """The figures of `manage.py status`: records per model, group sizes, export queues per
    destination and active runs."""

    api_topic = ApiTopic.SYSTEM

    @extend_schema(responses={200: a.StatusOutput, **ERRORS})
    def get(self, request: Request) -> Response:
        from core.selectors import status_summary

        return Response(status_summary())


class ApiRootView(ApiViewMixin, APIRootView):
    """The browsable API's index: links to every resource (any authenticated caller)."""

    api_topic = ANY_TOPIC


class SchemaView(ApiViewMixin, SpectacularAPIView):
    """The OpenAPI schema (any authenticated caller: it describes the API, holds no data)."""

    api_topic = ANY_TOPIC
    permission_classes = [HasTopicPermission]


class DocsView(ApiViewMixin, SpectacularSwaggerView):
    """Browsable documentation of the schema (Swagger UI), for staff sessions and keys."""

    api_topic = ANY_TOPIC
    permission_classes = [HasTopicPermission]
