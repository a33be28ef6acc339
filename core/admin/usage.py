"""Refusing, in the admin, to delete a property, group or source that something uses.

`InUseAdminMixin` sends every way the admin deletes through `core.services.usage`: the delete
page and the "Delete selected" action show a refusal page listing each user with a link to it
(nothing is deleted), and the deletes themselves go through `delete_unless_used`, which checks
again under a row lock. A source's own key property is shown, and deleted, with the source.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.utils import NestedObjects, unquote
from django.db import models, router
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy

from core.services.usage import InUse, Usage, delete_unless_used, refusals, users_of


def _admin_url(obj: models.Model) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


@admin.action(
    permissions=["delete"],
    description=gettext_lazy("Delete selected %(verbose_name_plural)s"),
)
def delete_selected_unless_used(modeladmin: Any, request: HttpRequest, queryset):
    """Django's "Delete selected", refused as a whole (with the refusal page) when any selected
    object is in use. Objects the user may not delete at all (managed by a config file) get
    Django's own refusal first."""
    objs = list(queryset)
    if all(modeladmin.has_delete_permission(request, obj) for obj in objs):
        refused = [(obj, users) for obj in objs if (users := refusals(obj))]
        if refused:
            confirmed = bool(request.POST.get("post"))
            return modeladmin.in_use_response(request, refused, status=409 if confirmed else 200)
    return delete_selected(modeladmin, request, queryset)


def _by_model(objs: list[models.Model]) -> list[list[models.Model]]:
    groups: dict[type, list[models.Model]] = {}
    for obj in objs:
        groups.setdefault(type(obj), []).append(obj)
    return list(groups.values())


def deleted_objects(groups: list[list[models.Model]], request: HttpRequest, admin_site: Any):
    """Django's `get_deleted_objects` for objects deleted together, given as homogeneous lists:
    (nested lines to show, {model: count}, verbose names lacking delete permission, protected
    lines). An object protected by one list and deleted with another is not protected."""
    collector = NestedObjects(using=router.db_for_write(type(groups[0][0])), origin=groups[0])
    for objs in groups:
        collector.collect(objs)
    going = {obj for objs in collector.model_objs.values() for obj in objs}
    perms_needed: set[str] = set()

    def line(obj: models.Model) -> str:
        opts = obj._meta
        plain = f"{capfirst(opts.verbose_name)}: {obj}"
        if not admin_site.is_registered(type(obj)):
            return plain
        if not admin_site.get_model_admin(type(obj)).has_delete_permission(request, obj):
            perms_needed.add(opts.verbose_name)
        try:
            url = reverse(
                f"{admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]
            )
        except NoReverseMatch:
            return plain
        return format_html('{}: <a href="{}">{}</a>', capfirst(opts.verbose_name), url, obj)

    to_delete = collector.nested(line)
    protected = [line(obj) for obj in collector.protected if obj not in going]
    counts = {
        model._meta.verbose_name_plural: len(objs) for model, objs in collector.model_objs.items()
    }
    return to_delete, counts, perms_needed, protected


class InUseAdminMixin:
    """For the admins of objects others use (Property, Group, Source): no delete path of the
    admin drops a group rule, a mapping or a tracked group along with the deleted object."""

    in_use_template = "admin/core/delete_refused.html"

    def in_use_response(
        self,
        request: HttpRequest,
        refused: list[tuple[models.Model, list[Usage]]],
        status: int = 200,
    ) -> HttpResponse:
        """The refusal page: each refused object and each of its users, linked. `status` 409
        answers a confirmed delete."""
        items = [
            {
                "obj": obj,
                "url": _admin_url(obj),
                "users": [
                    {
                        "usage": u,
                        "what": u.owner._meta.verbose_name,
                        "url": _admin_url(u.owner),
                    }
                    for u in users
                ],
            }
            for obj, users in refused
        ]
        names = self.opts.verbose_name if len(refused) == 1 else self.opts.verbose_name_plural
        context = {
            **self.admin_site.each_context(request),
            "title": f"Cannot delete {names}",
            "subtitle": None,
            "opts": self.opts,
            "refused": items,
        }
        return TemplateResponse(request, self.in_use_template, context, status=status)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and self.has_delete_permission(request, obj):
            users = refusals(obj)
            if users:
                status = 409 if request.method == "POST" else 200
                return self.in_use_response(request, [(obj, users)], status=status)
        try:
            return super().delete_view(request, object_id, extra_context)
        except InUse as exc:  # a use added since the check: the delete rolled back
            return self.in_use_response(request, [(exc.obj, exc.users)], status=409)

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            _func, name, description = actions["delete_selected"]
            actions["delete_selected"] = (delete_selected_unless_used, name, description)
        return actions

    def get_deleted_objects(self, objs, request: HttpRequest):
        """Django's list of what a delete takes along, plus what goes with the objects by our
        rules (a source's own key property), which then no longer counts as protecting them."""
        objs = list(objs)
        along = [u.owner for obj in objs for u in users_of(obj) if u.along]
        if not along:
            return super().get_deleted_objects(objs, request)
        return deleted_objects([objs, *_by_model(along)], request, self.admin_site)

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        delete_unless_used(obj=obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for obj in self.exclude_locked(request, queryset):
            try:
                delete_unless_used(obj=obj)
            except InUse as exc:
                messages.error(request, str(exc))
