"""What applying the config files would change: for each object of the files, create, update
(with the fields that differ) or nothing; and which database objects earlier applies created that
the files no longer hold (delete). Reads the database, writes nothing.

An object of the files is matched to the database object managed under the same class and id;
failing that, to an unmanaged object with the same natural key (name, or model + key, ...), which
apply then adopts — so a configuration first made in the admin or by `load_demo` can be taken
over by files without a unique-name clash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import Group as AuthGroup
from django.contrib.auth.models import User
from django.db.models import Model

from core import models as m
from core.config import state
from core.config.problems import Problems
from core.config.schema import CLASS_LABELS, CLASSES, Spec, api_key_prefix
from core.config.validate import Configuration

CREATE = "create"
UPDATE = "update"
DELETE = "delete"
SECRET_FIELDS = frozenset({"secret_options"})


@dataclass
class Change:
    """One object to create, update or delete (or leave: action None)."""

    action: str | None
    cls: str
    id: str
    file: str
    spec: Spec | None = None
    obj: Model | None = None
    fields: list[str] = field(default_factory=list)  # human-readable differences
    adopt: bool = False
    current: dict[str, Any] | None = None
    data_changed: bool = False  # something beyond the owning file differs (work to start)

    @property
    def label(self) -> str:
        return CLASS_LABELS[self.cls]

    def describe(self) -> str:
        if self.action == CREATE:
            return f'+ create {self.label} "{self.id}" ({self.file})'
        if self.action == DELETE:
            was = f" (was {self.file})" if self.file else ""
            return f'- delete {self.label} "{self.id}"{was}'
        what = "adopt" if self.adopt else "update"
        detail = "; ".join(self.fields)
        return f'~ {what} {self.label} "{self.id}" ({self.file})' + (
            f": {detail}" if detail else ""
        )


@dataclass
class Plan:
    """The changes applying `config` makes, in the order apply makes them (deletes first)."""

    config: Configuration
    changes: list[Change] = field(default_factory=list)
    problems: Problems = field(default_factory=Problems)
    ids: state.IdMap = field(default_factory=dict)

    @property
    def creates(self) -> list[Change]:
        return [c for c in self.changes if c.action == CREATE]

    @property
    def updates(self) -> list[Change]:
        return [c for c in self.changes if c.action == UPDATE]

    @property
    def deletes(self) -> list[Change]:
        return [c for c in self.changes if c.action == DELETE]

    @property
    def unchanged(self) -> list[Change]:
        return [c for c in self.changes if c.action is None]

    @property
    def empty(self) -> bool:
        return not (self.creates or self.updates or self.deletes)

    def lines(self) -> list[str]:
        out = [
            c.describe()
            for c in self.deletes + [c for c in self.changes if c.action in (CREATE, UPDATE)]
        ]
        if self.empty:
            out.append(
                f"Nothing to change: the database matches the {len(self.unchanged)} object(s) "
                f"of the config files."
            )
        else:
            out.append(
                f"{len(self.creates)} to create, {len(self.updates)} to update, "
                f"{len(self.deletes)} to delete, {len(self.unchanged)} unchanged."
            )
        return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def differences(cls: str, wanted: dict[str, Any], current: dict[str, Any]) -> list[str]:
    out = []
    for key, value in wanted.items():
        old = current.get(key)
        if old == value:
            continue
        if key in SECRET_FIELDS:
            out.append(f"{key} changed")
        elif isinstance(value, (list, dict)) and isinstance(old, (list, dict)):
            out.append(f"{key} changed")
        else:
            out.append(f"{key}: {_short(old)} → {_short(value)}")
    return out


class _Matcher:
    """Finds the database object for each spec (managed under its id, else adoptable)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.managed = {cls: state.managed_objects(cls) for cls in CLASSES}
        self.taken: set[tuple[str, int]] = {
            (cls, obj.pk) for cls, objs in self.managed.items() for obj in objs.values()
        }
        self.matched: dict[tuple[str, str], Model] = {}

    def obj_of(self, cls: str, object_id: str | None) -> Model | None:
        return self.matched.get((cls, object_id)) if object_id else None

    def find(self, spec: Spec) -> tuple[Model | None, bool]:
        obj = self.managed[spec.cls].get(spec.id)
        if obj is not None:
            return obj, False
        candidate = self.natural(spec)
        if candidate is not None and (spec.cls, candidate.pk) not in self.taken:
            self.taken.add((spec.cls, candidate.pk))
            return candidate, True
        return None, False

    def natural(self, spec: Spec) -> Model | None:
        d = spec.data
        if spec.cls == "setting":
            return m.Setting.objects.filter(plugin=d["plugin"], key=d["key"]).first()
        if spec.cls in ("model", "app", "source", "destination", "apikey"):
            return state.DOMAIN_MODELS[spec.cls].objects.filter(name=d["name"]).first()
        if spec.cls == "property":
            model = self.obj_of("model", d["model"])
            return m.Property.objects.filter(model=model, key=d["key"]).first() if model else None
        if spec.cls == "group":
            model = self.obj_of("model", d["model"])
            return m.Group.objects.filter(model=model, name=d["name"]).first() if model else None
        if spec.cls == "schedule":
            source = self.obj_of("source", d["source"])
            return m.Schedule.objects.filter(source=source).first() if source else None
        if spec.cls == "team":
            return AuthGroup.objects.filter(name=d["name"]).first()
        if spec.cls == "teammember":
            return (
                User.objects.filter(username__iexact=d["email"]).first()
                or User.objects.filter(email__iexact=d["email"]).first()
            )
        return None


def plan_compute(config: Configuration) -> Plan:
    """Compare the validated files with the database. Read-only; the same inputs give the same
    plan. Objects owned by skipped `.js` files are neither updated nor deleted."""
    plan = Plan(config=config)
    matcher = _Matcher(plan)
    ids: state.IdMap = {}
    for cls, objs in matcher.managed.items():
        for config_id, obj in objs.items():
            ids[(cls, obj.pk)] = config_id
    pending: list[tuple[Spec, Model | None, bool]] = []
    for spec in config.specs:
        obj, adopt = matcher.find(spec)
        if obj is not None:
            matcher.matched[(spec.cls, spec.id)] = obj
            ids[(spec.cls, obj.pk)] = spec.id
        pending.append((spec, obj, adopt))
    plan.ids = ids

    seen = {(spec.cls, spec.id) for spec in config.specs}
    skipped = set(config.skipped_files)
    for cls in reversed(CLASSES):
        for config_id, obj in sorted(matcher.managed[cls].items()):
            if (cls, config_id) in seen:
                continue
            lock = state.lock_of(cls, obj)
            if lock in skipped:
                continue
            plan.changes.append(Change(DELETE, cls, config_id, lock, obj=obj))

    for spec, obj, adopt in pending:
        if obj is None:
            plan.changes.append(
                Change(CREATE, spec.cls, spec.id, spec.file, spec=spec, data_changed=True)
            )
            continue
        current = state.read(spec.cls, obj, ids)
        fields = differences(spec.cls, spec.data, current)
        fields += _special_differences(spec, obj)
        data_changed = bool(fields)
        lock = state.lock_of(spec.cls, obj)
        if adopt:
            fields.insert(0, "taken over from the admin (it was not managed by a config file)")
        elif lock != spec.file:
            fields.append(f"owner: {lock or '(none)'} → {spec.file}")
        action = UPDATE if fields else None
        plan.changes.append(
            Change(
                action,
                spec.cls,
                spec.id,
                spec.file,
                spec=spec,
                obj=obj,
                fields=fields,
                adopt=adopt,
                current=current,
                data_changed=data_changed,
            )
        )
    return plan


def _special_differences(spec: Spec, obj: Model) -> list[str]:
    """What `data` cannot hold: a key given in the file, a member's password."""
    if spec.cls == "apikey" and spec.secret:
        from core.services.api_keys import api_key_hash

        if obj.hashed_key != api_key_hash(spec.secret) or obj.prefix != api_key_prefix(spec.secret):
            return ["apiKey changed"]
    if spec.cls == "teammember" and spec.secret and not obj.check_password(spec.secret):
        return ["password changed"]
    return []
