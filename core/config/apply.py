"""Applying config files: make the database match them, atomically.

`config_apply(directory=..., plan_only=False)` validates the files, computes the plan
(core.config.plan) and, unless `plan_only`, carries it out in one transaction: deletes first
(objects earlier applies created that the files no longer hold), then creates and updates in
dependency order, then the sources' mappings (a primary source is mapped by a property it owns,
which only exists after the source). Every write goes through the ORM with `full_clean()`; any
failure rolls everything back and is reported with the file, object id and key concerned.

A property, group or source something uses (core.services.usage) is deleted only when this same
apply deletes or changes every user: usage is judged against the state after the apply. A user
the apply changes but that the database protects until then (a destination tracking the group, a
property of the source) makes that delete wait until after the writes.

Managed objects get `config_id` (their id in the files) and `locked_by` (the file, relative to
the config directory): the admin shows them read-only and the API refuses to change them.

After the writes, the work the changes imply is started as the admin starts it (runs enqueued on
commit): a created or changed group is recomputed, a created or changed property makes its source
run in full, a created or changed destination re-exports.

Idempotent: applying the same files again finds nothing to change and writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Group as AuthGroup
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import ProtectedError

from core import models as m
from core.choices import ACTIVE_RUN_STATES
from core.config import state
from core.config.plan import DELETE, Change, Plan, plan_compute
from core.config.problems import ERROR, ConfigError, Problem
from core.config.schema import CLASS_LABELS, Spec, api_key_prefix
from core.config.validate import Configuration, config_validate, is_query_connector
from core.services.usage import CHECKED, InUse, Usage, delete_unless_used, users_of

# Model field -> the key of the config file it comes from, for error messages.
FIELD_KEYS = {
    "app": "appId",
    "model": "modelId",
    "source": "sourceId",
    "group": "groupId",
    "sync_mode": "syncMode",
    "is_array": "isArray",
    "is_primary_key": "mapping",
    "is_primary": "mapping",
    "recurring_frequency": "recurringFrequency",
    "confirm_records": "confirmRecords",
    "refresh_enabled": "refreshEnabled",
    "match_type": "matchType",
    "plugin": "pluginName",
    "secret_options": "options",
    "permission_all_read": "options.permissionAllRead",
    "permission_all_write": "options.permissionAllWrite",
    "username": "email",
    "prefix": "apiKey",
    "hashed_key": "apiKey",
}
# Database constraints a write can hit although the files validate, in words.
CONSTRAINT_MESSAGES = {
    "core_source_one_primary_per_model": (
        "the model already has another primary source (one not managed by config files?); a "
        "model has one"
    ),
    "core_property_one_primary_key_per_model": (
        "the model already has another primary key property (one not managed by config files?)"
    ),
}


# The key a database constraint spanning several fields most likely concerns, per class.
OBJECT_KEYS = {
    "source": "mapping",
    "property": "key",
    "group": "name",
    "schedule": "sourceId",
    "setting": "key",
    "destination": "groupId",
}


@dataclass
class ApplyResult:
    """What an apply did (or, with plan_only, would do)."""

    plan: Plan
    applied: bool = False
    api_keys: dict[str, str] = field(default_factory=dict)  # minted keys, shown once
    runs: list[int] = field(default_factory=list)

    @property
    def warnings(self) -> list[Problem]:
        return self.plan.config.problems.warnings

    @property
    def changed(self) -> bool:
        return not self.plan.empty


# What becomes of an object using one that is deleted, once the apply is done.
GONE, REWRITTEN, KEPT = "gone", "rewritten", "kept"


class _Failed(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def config_directory(directory: str | Path | None = None) -> Path:
    """The config directory: `directory`, else GROUPAROO_CONFIG_DIR (setting or environment),
    else `config/` beside manage.py — where Grouparoo projects kept theirs."""
    import os

    from django.conf import settings

    if directory:
        return Path(directory)
    configured = getattr(settings, "GROUPAROO_CONFIG_DIR", None) or os.environ.get(
        "GROUPAROO_CONFIG_DIR"
    )
    return Path(configured) if configured else Path(settings.BASE_DIR) / "config"


def config_apply(
    *, directory: str | Path, plan_only: bool = False, allow_js: bool | None = None
) -> ApplyResult:
    """Make the database match the config files under `directory`.

    Raises ConfigError (nothing written) when the files do not validate or a write fails.
    `plan_only`: compute and return the plan, write nothing. `allow_js`: as config_validate.
    Idempotent: a second apply of the same files plans no change and writes nothing (an API key
    the first apply minted is kept).
    """
    config = config_validate(directory=directory, allow_js=allow_js)
    if config.problems.errors:
        raise ConfigError(config.problems.errors)
    plan = plan_compute(config)
    result = ApplyResult(plan=plan)
    if plan_only or plan.empty:
        return result
    try:
        with transaction.atomic():
            _Applier(plan, result).run()
    except _Failed as exc:
        raise ConfigError([exc.problem], "the apply failed; nothing was changed") from None
    result.applied = True
    return result


def _problem(change: Change | Spec, key: str, message: str) -> Problem:
    cls = change.cls
    return Problem(
        ERROR, change.file, message, object_id=change.id, object_class=CLASS_LABELS[cls], key=key
    )


class _Applier:
    def __init__(self, plan: Plan, result: ApplyResult) -> None:
        self.plan = plan
        self.result = result
        self.config: Configuration = plan.config
        self.objects: dict[tuple[str, str], models.Model] = {}
        self.touched: dict[tuple[str, str], bool] = {}  # (cls, id) -> created or changed
        self._permissions: dict[str, Permission] | None = None
        self._changes_by_obj = {
            (c.obj._meta.label, c.obj.pk): c for c in plan.changes if c.obj is not None
        }

    def obj(self, cls: str, object_id: str | None) -> Any:
        return self.objects.get((cls, object_id)) if object_id else None

    # -- the run --

    def run(self) -> None:
        later = [change for change in self.plan.deletes if self.delete_waits(change)]
        waiting = {(change.cls, change.id) for change in later}
        for change in self.plan.deletes:
            if (change.cls, change.id) not in waiting:
                self.guard(change, "", lambda c=change: self.delete(c))
        self.clear_flags()
        for change in self.plan.changes:
            if change.action == DELETE:
                continue
            spec = change.spec
            if change.action is None:
                self.objects[(spec.cls, spec.id)] = change.obj
                continue
            writer = getattr(self, f"write_{spec.cls}")
            obj = self.guard(
                change, OBJECT_KEYS.get(spec.cls, ""), lambda c=change, w=writer: w(c.spec, c.obj)
            )
            self.objects[(spec.cls, spec.id)] = obj
            self.touched[(spec.cls, spec.id)] = change.data_changed
        for change in self.plan.changes:
            if change.spec is not None and change.spec.cls == "source":
                self.guard(change, "mapping", lambda c=change: self.write_mapping(c.spec))
        for change in later:
            self.guard(change, "", lambda c=change: self.delete(c, after_writes=True))
        self.start_work()

    def guard(self, change: Change, key: str, fn):
        """Run one write; turn a failure into a problem naming the file, id and key."""
        try:
            with transaction.atomic():
                return fn()
        except _Failed:
            raise
        except InUse as exc:
            raise _Failed(self.in_use_problem(change, exc.users)) from None
        except ValidationError as exc:
            raise _Failed(_problem(change, *_validation_key(exc, key))) from None
        except ProtectedError as exc:
            users = sorted({str(o) for o in exc.protected_objects})[:5]
            raise _Failed(
                _problem(
                    change,
                    key,
                    f"cannot be deleted: still used by {', '.join(users)} (not managed by config files)",
                )
            ) from None
        except IntegrityError as exc:
            raise _Failed(
                _problem(change, key, f"the database refused the change: {exc}")
            ) from None

    def full_save(self, obj: models.Model, **clean: Any) -> models.Model:
        obj.full_clean(**clean)
        obj.save()
        return obj

    def lock(self, obj: models.Model, spec: Spec) -> None:
        obj.config_id = spec.id
        obj.locked_by = spec.file

    # -- deletes --

    def fate(self, owner: models.Model, change: Change) -> str:
        """What this apply does to `owner`, an object using `change.obj`: deletes it (GONE),
        rewrites it from its file so that it no longer uses the object (REWRITTEN), or leaves
        it using it (KEPT: made in the admin, owned by a skipped file, or unchanged)."""
        other = self._changes_by_obj.get((owner._meta.label, owner.pk))
        if other is None or other.action is None:
            return KEPT
        if other.action == DELETE:
            return GONE
        return KEPT if (change.cls, change.id) in _references(other.spec) else REWRITTEN

    def delete_waits(self, change: Change) -> bool:
        """Whether `change`'s delete waits for the writes (a use the apply ends later still
        protects the object now). Raises _Failed when a use outlives the apply."""
        if not isinstance(change.obj, CHECKED):
            return False
        kept: list[Usage] = []
        waits = False
        for usage in users_of(change.obj):
            fate = self.fate(usage.owner, change)
            if fate == KEPT and not usage.along:
                kept.append(usage)
            waits = waits or (fate == REWRITTEN and usage.blocks)
        if kept:
            raise _Failed(self.in_use_problem(change, kept))
        return waits

    def in_use_problem(self, change: Change, users: list[Usage]) -> Problem:
        def note(owner: models.Model) -> str:
            lock = getattr(owner, "locked_by", "")
            if lock:
                return f"managed by {lock}, which this apply does not change"
            return "not managed by config files"

        listed = "; ".join(f"{u}, {note(u.owner)}" for u in users[:10])
        more = f"; and {len(users) - 10} more" if len(users) > 10 else ""
        return _problem(
            change,
            "",
            f"cannot be deleted: still used by {listed}{more}. Remove those uses (or delete "
            f"those objects) in the admin or in their files, or keep this object's file",
        )

    def delete(self, change: Change, after_writes: bool = False) -> None:
        obj = change.obj
        if isinstance(obj, CHECKED):
            # After the writes only deleted users are excused: rewritten ones no longer use it.
            excused = (GONE,) if after_writes else (GONE, REWRITTEN)
            delete_unless_used(obj=obj, ignore=lambda u: self.fate(u.owner, change) in excused)
            return
        if change.cls == "setting":
            from core.settings_registry import DEFAULTS

            default = {d.key: d for d in DEFAULTS}.get(obj.key) if obj.plugin == "core" else None
            if default is not None:
                obj.value, obj.config_id, obj.locked_by = default.default, "", ""
                self.full_save(obj)
            else:
                obj.delete()
            return
        if change.cls in state.REGISTRY_PLUGINS:
            entry = state.registry_entries(change.cls).get(change.id)
            if change.cls == "teammember" and entry is not None and not entry.created:
                obj.groups.remove(*[g for g in obj.groups.all() if self._is_managed_team(g)])
            elif entry is None or entry.created:
                obj.delete()
            if entry is not None:
                entry.row.delete()
            return
        obj.delete()

    def _is_managed_team(self, group: AuthGroup) -> bool:
        return any(e.pk == group.pk for e in state.registry_entries("team").values())

    def clear_flags(self) -> None:
        """Primary flags move between sources and properties: clear the ones going away first, so
        the one-per-model constraints never see two at once."""
        for change in self.plan.updates:
            spec, obj = change.spec, change.obj
            if spec.cls == "source" and obj.is_primary and not spec.data["is_primary"]:
                obj.is_primary = False
                self.guard(
                    change,
                    "mapping",
                    lambda o=obj: o.save(update_fields=["is_primary", "updated_at"]),
                )
            if spec.cls == "property" and obj.is_primary_key and not spec.data["is_primary_key"]:
                obj.is_primary_key = False
                self.guard(
                    change,
                    "mapping",
                    lambda o=obj: o.save(update_fields=["is_primary_key", "updated_at"]),
                )

    # -- writers: (spec, existing object or None) -> saved object --

    def write_setting(self, spec: Spec, obj: m.Setting | None) -> m.Setting:
        from core.settings_registry import DEFAULTS

        d = spec.data
        obj = obj or m.Setting(plugin=d["plugin"], key=d["key"])
        default = {x.key: x for x in DEFAULTS}.get(d["key"]) if d["plugin"] == "core" else None
        if default is not None and not obj.pk:
            obj.type, obj.title, obj.description = default.type, default.title, default.description
        obj.plugin, obj.key, obj.value = d["plugin"], d["key"], d["value"]
        self.lock(obj, spec)
        return self.full_save(obj)

    def write_model(self, spec: Spec, obj: m.RecordModel | None) -> m.RecordModel:
        obj = obj or m.RecordModel()
        obj.name, obj.type = spec.data["name"], spec.data["type"]
        self.lock(obj, spec)
        return self.full_save(obj)

    def write_app(self, spec: Spec, obj: m.App | None) -> m.App:
        d = spec.data
        obj = obj or m.App()
        obj.name, obj.type = d["name"], d["type"]
        obj.options, obj.secret_options = d["options"], d["secret_options"]
        self.lock(obj, spec)
        self.full_save(obj)
        refresh = m.AppRefreshQuery.objects.filter(app=obj).first()
        if d["refresh"] is None:
            if refresh is not None:
                refresh.delete()
        else:
            refresh = refresh or m.AppRefreshQuery(app=obj)
            if (refresh.query, refresh.recurring_frequency) != (
                d["refresh"]["query"],
                d["refresh"]["recurring_frequency"],
            ):
                refresh.query = d["refresh"]["query"]
                refresh.recurring_frequency = d["refresh"]["recurring_frequency"]
                try:
                    self.full_save(refresh)
                except ValidationError as exc:
                    raise _Failed(_problem(spec, "refresh", "; ".join(exc.messages))) from None
        return obj

    def write_source(self, spec: Spec, obj: m.Source | None) -> m.Source:
        d = spec.data
        obj = obj or m.Source()
        obj.name, obj.type, obj.options = d["name"], d["type"], d["options"]
        obj.app, obj.model = self.obj("app", d["app"]), self.obj("model", d["model"])
        obj.is_primary = d["is_primary"]
        self.lock(obj, spec)
        return self.full_save(obj)

    def write_mapping(self, spec: Spec) -> None:
        source = self.obj("source", spec.id)
        wanted = {remote: self.obj("property", pid) for remote, pid in spec.data["mapping"].items()}
        current = {
            row.remote_key: row.property for row in source.mappings.select_related("property")
        }
        if {k: p.pk for k, p in current.items()} == {k: p.pk for k, p in wanted.items()}:
            return
        source.mappings.all().delete()
        for remote, prop in wanted.items():
            row = m.SourceMapping(source=source, remote_key=remote, property=prop)
            try:
                self.full_save(row)
            except ValidationError as exc:
                raise _Failed(
                    _problem(spec, f"mapping.{remote}", "; ".join(exc.messages))
                ) from None
        self.touched[("source", spec.id)] = True

    def _replace_filters(
        self, spec: Spec, owner: models.Model, related: str, model: type, fk: str
    ) -> None:
        from core.config.state import _filters

        manager = getattr(owner, related)
        if _filters(manager.order_by("position", "pk")) == spec.data["filters"]:
            return
        manager.all().delete()
        for position, item in enumerate(spec.data["filters"]):
            row = model(**{fk: owner}, position=position, **item)
            try:
                self.full_save(row)
            except ValidationError as exc:
                raise _Failed(
                    _problem(spec, f"filters[{position}]", "; ".join(exc.messages))
                ) from None

    def write_property(self, spec: Spec, obj: m.Property | None) -> m.Property:
        d = spec.data
        obj = obj or m.Property()
        obj.model, obj.source = self.obj("model", d["model"]), self.obj("source", d["source"])
        obj.key, obj.type, obj.unique, obj.is_array = (
            d["key"],
            d["type"],
            d["unique"],
            d["is_array"],
        )
        obj.is_primary_key, obj.options = d["is_primary_key"], d["options"]
        self.lock(obj, spec)
        self.full_save(obj)
        self._replace_filters(spec, obj, "filters", m.PropertyFilter, "property")
        return obj

    def write_schedule(self, spec: Spec, obj: m.Schedule | None) -> m.Schedule:
        d = spec.data
        obj = obj or m.Schedule()
        obj.source = self.obj("source", d["source"])
        obj.name, obj.recurring, obj.recurring_frequency = (
            d["name"],
            d["recurring"],
            d["recurring_frequency"],
        )
        obj.cron, obj.incremental, obj.confirm_records = (
            d["cron"],
            d["incremental"],
            d["confirm_records"],
        )
        obj.refresh_enabled, obj.options = d["refresh_enabled"], d["options"]
        self.lock(obj, spec)
        self.full_save(obj)
        self._replace_filters(spec, obj, "filters", m.ScheduleFilter, "schedule")
        return obj

    def write_group(self, spec: Spec, obj: m.Group | None) -> m.Group:
        d = spec.data
        obj = obj or m.Group()
        obj.model, obj.name, obj.match_type = (
            self.obj("model", d["model"]),
            d["name"],
            d["match_type"],
        )
        self.lock(obj, spec)
        self.full_save(obj)
        current = state.read_group(obj, self.plan.ids | self._ids())["rules"]
        if current != d["rules"]:
            obj.rules.all().delete()
            for position, (path, rule) in enumerate(zip(spec.rule_paths, d["rules"], strict=True)):
                row = m.GroupRule(
                    group=obj,
                    property=self.obj("property", rule["property"]),
                    op=rule["op"],
                    match=rule["match"],
                    relative_match_number=rule["relative_match_number"],
                    relative_match_unit=rule["relative_match_unit"],
                    position=position,
                )
                try:
                    self.full_save(row)
                except ValidationError as exc:
                    raise _Failed(_problem(spec, path, "; ".join(exc.messages))) from None
        return obj

    def _ids(self) -> state.IdMap:
        return {(cls, obj.pk): oid for (cls, oid), obj in self.objects.items()}

    def write_destination(self, spec: Spec, obj: m.Destination | None) -> m.Destination:
        d = spec.data
        obj = obj or m.Destination()
        obj.name, obj.type, obj.sync_mode, obj.collection = (
            d["name"],
            d["type"],
            d["sync_mode"],
            d["collection"],
        )
        obj.app, obj.model = self.obj("app", d["app"]), self.obj("model", d["model"])
        obj.group = self.obj("group", d["group"])
        obj.options, obj.secret_options = d["options"], d["secret_options"]
        self.lock(obj, spec)
        self.full_save(obj)
        current = state.read_destination(obj, self.plan.ids | self._ids())
        if current["mapping"] != d["mapping"]:
            obj.mappings.all().delete()
            for remote, pid in d["mapping"].items():
                row = m.DestinationMapping(
                    destination=obj, remote_key=remote, property=self.obj("property", pid)
                )
                try:
                    self.full_save(row)
                except ValidationError as exc:
                    raise _Failed(
                        _problem(spec, f"mapping.{remote}", "; ".join(exc.messages))
                    ) from None
        if current["memberships"] != d["memberships"]:
            obj.group_memberships.all().delete()
            for remote, gid in d["memberships"].items():
                row = m.DestinationGroupMembership(
                    destination=obj, remote_key=remote, group=self.obj("group", gid)
                )
                try:
                    self.full_save(row)
                except ValidationError as exc:
                    raise _Failed(
                        _problem(
                            spec, f"destinationGroupMemberships.{remote}", "; ".join(exc.messages)
                        )
                    ) from None
        return obj

    def write_apikey(self, spec: Spec, obj: m.ApiKey | None) -> m.ApiKey:
        from core.services.api_keys import api_key_create, api_key_hash

        d = spec.data
        fields = {
            "permission_all_read": d["permission_all_read"],
            "permission_all_write": d["permission_all_write"],
            "config_id": spec.id,
            "locked_by": spec.file,
        }
        if obj is None and not spec.secret:
            obj, key = api_key_create(name=d["name"], **fields)
            self.result.api_keys[spec.id] = key
        else:
            obj = obj or m.ApiKey()
            obj.name = d["name"]
            for name, value in fields.items():
                setattr(obj, name, value)
            if spec.secret:
                obj.prefix, obj.hashed_key = api_key_prefix(spec.secret), api_key_hash(spec.secret)
            self.full_save(obj)
        current = {p.topic: [p.read, p.write] for p in obj.permissions.all()}
        if current != d["permissions"]:
            obj.permissions.all().delete()
            for topic, (read, write) in d["permissions"].items():
                self.full_save(m.ApiKeyPermission(api_key=obj, topic=topic, read=read, write=write))
        return obj

    def _permission_objects(self) -> dict[str, Permission]:
        if self._permissions is None:
            self._permissions = {
                f"{p.content_type.app_label}.{p.codename}": p
                for p in Permission.objects.select_related("content_type")
            }
        return self._permissions

    def _register(self, cls: str, spec: Spec, obj: models.Model, created: bool) -> None:
        entries = state.registry_entries(cls)
        entry = entries.get(spec.id)
        row = entry.row if entry else m.Setting(plugin=state.REGISTRY_PLUGINS[cls], key=spec.id)
        was_created = entry.created if entry and entry.pk == obj.pk else created
        row.value = json.dumps({"pk": obj.pk, "created": was_created}, sort_keys=True)
        row.title = f"{CLASS_LABELS[cls]} {spec.id}"
        row.description = f"The {'group' if cls == 'team' else 'user'} {obj} is managed by the config file {spec.file}."
        row.config_id, row.locked_by = spec.id, spec.file
        self.full_save(row)

    def write_team(self, spec: Spec, obj: AuthGroup | None) -> AuthGroup:
        created = obj is None
        obj = obj or AuthGroup()
        obj.name = spec.data["name"]
        self.full_save(obj)
        perms = self._permission_objects()
        missing = [p for p in spec.data["permissions"] if p not in perms]
        if missing:
            raise _Failed(
                _problem(spec, "permissions", f"unknown permissions {', '.join(missing[:5])}")
            )
        obj.permissions.set([perms[p] for p in spec.data["permissions"]])
        self._register("team", spec, obj, created)
        return obj

    def write_teammember(self, spec: Spec, obj: User | None) -> User:
        d = spec.data
        created = obj is None
        obj = obj or User(username=d["email"])
        obj.email, obj.first_name, obj.last_name = d["email"], d["first_name"], d["last_name"]
        obj.is_staff = True
        if spec.secret:
            if not obj.check_password(spec.secret):
                obj.set_password(spec.secret)
        elif created:
            obj.set_unusable_password()
        self.full_save(obj)
        team = self.obj("team", d["team"])
        for group in obj.groups.all():
            if group.pk != team.pk and self._is_managed_team(group):
                obj.groups.remove(group)
        obj.groups.add(team)
        self._register("teammember", spec, obj, created)
        return obj

    # -- the work the changes imply --

    def start_work(self) -> None:
        from connectors import registry
        from core.services.destinations import destination_resync_enqueue
        from core.services.groups import group_recompute_enqueue
        from core.services.sources import property_changed

        runs: set[int] = set()
        for (cls, object_id), changed in self.touched.items():
            if not changed:
                continue
            obj = self.objects[(cls, object_id)]
            if cls == "group":
                runs.add(group_recompute_enqueue(group=obj).pk)
            elif cls == "destination":
                runs.add(destination_resync_enqueue(destination=obj).pk)
            elif cls == "property":
                source = obj.source
                try:
                    connector = registry.get_source(source.type)
                except registry.UnknownConnector:
                    continue
                if is_query_connector(connector) and not (source.options or {}).get("query"):
                    continue  # nothing it could read in full; its properties fill in as records arrive
                property_changed(prop=obj)
                active = m.Run.objects.filter(source=source, state__in=ACTIVE_RUN_STATES).first()
                if active:
                    runs.add(active.pk)
        self.result.runs = sorted(runs)


def _references(spec: Spec) -> set[tuple[str, str]]:
    """The (class, id) of the objects `spec` uses in the ways core.services.usage checks."""
    d = spec.data
    if spec.cls == "group":
        return {("property", rule["property"]) for rule in d["rules"]}
    if spec.cls == "destination":
        groups = [d["group"], *d["memberships"].values()]
        return {("property", p) for p in d["mapping"].values()} | {
            ("group", g) for g in groups if g
        }
    if spec.cls == "source":
        return {("property", p) for p in d["mapping"].values()}
    if spec.cls == "property":
        return {("source", d["source"])}
    return set()


def _validation_key(exc: ValidationError, default: str) -> tuple[str, str]:
    """(file key, message) from a model ValidationError."""
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            key = default if name == "__all__" else FIELD_KEYS.get(name, name)
            return key, _explain("; ".join(errors))
    return default, _explain("; ".join(exc.messages))


def _explain(message: str) -> str:
    for constraint, words in CONSTRAINT_MESSAGES.items():
        if constraint in message:
            return words
    return message
