"""Admin for Groups (rules inline, "Recompute" action), Group Rules and Group Members."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.html import format_html

from core import models as m
from core.admin.base import (
    GrouparooModelAdmin,
    ReadOnlyAdminMixin,
    admin_link,
    changelist_link,
    count_of,
    service_errors,
)
from core.admin.inlines import GroupRuleInline
from core.admin.usage import InUseAdminMixin


@admin.register(m.Group)
class GroupAdmin(InUseAdminMixin, GrouparooModelAdmin):
    list_display = [
        "name",
        "model",
        "match_type",
        "rule_count",
        "current_members",
        "calculated_at",
        "state",
    ]
    list_filter = ["model", "match_type", "state"]
    list_select_related = ["model"]
    search_fields = ["name"]
    fields = [
        "model",
        "name",
        "match_type",
        "state",
        ("member_count", "members_link"),
        ("calculated_at", "next_calculate_at"),
    ]
    readonly_fields = ["member_count", "members_link", "calculated_at", "next_calculate_at"]
    inlines = [GroupRuleInline]
    actions = ["recompute"]

    def get_queryset(self, request: HttpRequest):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_rules=count_of(m.GroupRule, "group"),
                n_members=count_of(m.GroupMember, "group", left_at__isnull=True),
            )
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "model"] if obj is not None else readonly

    @admin.display(description="rules", ordering="n_rules")
    def rule_count(self, obj: Any) -> int:
        return obj.n_rules

    @admin.display(description="members", ordering="n_members")
    def current_members(self, obj: Any) -> int:
        return obj.n_members

    @admin.display(description="members")
    def members_link(self, obj: m.Group) -> str:
        if obj.pk is None:
            return "-"
        return changelist_link(
            m.GroupMember, "current members", group__id__exact=obj.pk, left_at__isnull="True"
        )

    @admin.action(description="Recompute members", permissions=["change"])
    def recompute(self, request: HttpRequest, queryset) -> None:
        from core.services.groups import group_recompute_enqueue

        for group in queryset:
            with service_errors(request, group):
                run = group_recompute_enqueue(group=group)
                messages.success(
                    request,
                    format_html(
                        "{}: recompute run {} started.", group, admin_link(run, f"#{run.pk}")
                    ),
                )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """A new or edited group (or its rules) starts a recompute, which exports what moved."""
        super().save_related(request, form, formsets, change)
        if form.has_changed() or any(fs.has_changed() for fs in formsets):
            from core.services.groups import group_recompute_enqueue

            with service_errors(request, form.instance):
                run = group_recompute_enqueue(group=form.instance)
                messages.info(
                    request, format_html("Recompute run {} started.", admin_link(run, f"#{run.pk}"))
                )


@admin.register(m.GroupRule)
class GroupRuleAdmin(GrouparooModelAdmin):
    list_display = ["__str__", "group", "property", "op", "position"]
    list_filter = ["op", "group"]
    list_select_related = ["group", "property"]
    search_fields = ["group__name", "property__key", "match"]


@admin.register(m.GroupMember)
class GroupMemberAdmin(ReadOnlyAdminMixin, GrouparooModelAdmin):
    """Members come from the group's rules (recomputes): read-only here, like a log."""

    list_display = ["id", "group", "record_link", "joined_at", "left_at", "is_current"]
    list_filter = ["group", ("left_at", admin.EmptyFieldListFilter)]
    list_select_related = ["group", "record__model"]
    search_fields = ["record__id__exact", "group__name"]
    raw_id_fields = ["record"]
    show_full_result_count = False

    @admin.display(description="record", ordering="record_id")
    def record_link(self, obj: m.GroupMember) -> str:
        return admin_link(obj.record)

    @admin.display(description="current", boolean=True)
    def is_current(self, obj: m.GroupMember) -> bool:
        return obj.left_at is None
