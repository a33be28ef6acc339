"""`manage.py generate`: write new config files from templates (core.config.templates).

`config_generate(directory=..., template=..., object_id=..., params={...})` validates the
directory first (to find parents such as the app of a new source, and ids already taken), runs
the template, and writes its files — several at once for Batch Generation (a table source with
its schedule and one property per column). It never overwrites a file unless `force`, and never
writes an id the directory already uses for that class. The files it writes pass `validate` as
they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config.export import generate_id
from core.config.loader import RawObject
from core.config.schema import CLASS_LABELS, class_of
from core.config.templates import Template, TemplateError, templates
from core.config.validate import config_validate

__all__ = ["GenerateResult", "TemplateError", "config_generate", "parse_params", "templates"]


@dataclass
class GenerateResult:
    directory: Path
    template: Template
    files: list[str] = field(default_factory=list)
    objects: list[tuple[str, str]] = field(default_factory=list)  # (class label, id)


def parse_params(args: list[str]) -> dict[str, str]:
    """`--key value`, `--key=value` and bare `--flag` arguments as {key: value} (flags "true")."""
    params: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or arg == "--":
            raise TemplateError(f"unexpected argument {arg!r} (options look like --name value)")
        name = arg[2:]
        if "=" in name:
            name, value = name.split("=", 1)
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            value = args[i + 1]
            i += 1
        else:
            value = "true"
        params[name.strip().lower().replace("_", "-")] = value
        i += 1
    return params


def config_generate(
    *,
    directory: str | Path,
    template: str,
    object_id: str,
    params: dict[str, str] | None = None,
    force: bool = False,
) -> GenerateResult:
    """Write the files of `template` for a new object `object_id` into `directory`.

    Raises TemplateError (nothing written) for an unknown template or input, a missing parent, an
    id already used, or a file that exists (without `force`). Not idempotent by design: a second
    call for the same id refuses instead of writing a duplicate.
    """
    from core.config.templates import Context

    available = templates()
    if template not in available:
        raise TemplateError(f"unknown template {template!r}; `generate --list` shows them")
    chosen = available[template]
    clean_id = generate_id(object_id)
    if not clean_id or clean_id != object_id:
        raise TemplateError(
            f"ids are lowercase letters, digits, - and _ (try {clean_id!r})"
            if clean_id
            else "the id is empty"
        )
    params = dict(params or {})
    known = {i.name for i in chosen.inputs}
    unknown = sorted(set(params) - known)
    if unknown:
        raise TemplateError(
            f"{template} takes no --{', --'.join(unknown)} (it takes: "
            f"{', '.join('--' + n for n in sorted(known)) or 'no options'})"
        )
    for item in chosen.inputs:
        if item.required and not params.get(item.name):
            raise TemplateError(f"--{item.name} is required: {item.help}")
    base = Path(directory)
    base.mkdir(parents=True, exist_ok=True)
    config = config_validate(directory=base)
    if config.get(chosen.cls, object_id) is not None:
        spec = config.get(chosen.cls, object_id)
        raise TemplateError(
            f'{CLASS_LABELS[chosen.cls]} "{object_id}" already exists in {spec.file}'
        )
    files = chosen.build(Context(object_id=object_id, params=params, config=config))
    result = GenerateResult(directory=base, template=chosen)
    for rel, objects in files.items():
        for obj in objects:
            cls = class_of(RawObject(rel, None, obj))
            if cls != chosen.cls and config.get(cls, obj["id"]) is not None:
                raise TemplateError(
                    f'{CLASS_LABELS[cls]} "{obj["id"]}" already exists in {config.get(cls, obj["id"]).file}'
                )
        if (base / rel).exists() and not force:
            raise TemplateError(f"{rel} already exists (pass --force to overwrite it)")
    for rel, objects in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        payload: Any = objects[0] if len(objects) == 1 else objects
        path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        result.files.append(rel)
        result.objects.extend(
            (CLASS_LABELS[class_of(RawObject(rel, None, o))], o["id"]) for o in objects
        )
    return result
