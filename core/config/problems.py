"""Problems found in config files: each names the file, the object id and the key it concerns.

A problem is an error (the files cannot be applied) or a warning (they can, but something was
tolerated, renamed or skipped — Grouparoo 0.9 printed the same kind of deprecation warnings).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding. `file` is relative to the config directory; `key` is a path such as
    `options.table`, `rules[0].op` or `mapping.id` (empty when the whole object is concerned)."""

    level: str
    file: str
    message: str
    object_id: str | None = None
    object_class: str | None = None
    key: str = ""

    def __str__(self) -> str:
        parts = [self.file or "(config)"]
        if self.object_id is not None or self.object_class:
            what = self.object_class or "object"
            parts.append(f'{what} "{self.object_id}"' if self.object_id else f"{what} without id")
        if self.key:
            parts.append(self.key)
        return ": ".join([*parts, self.message])


@dataclass
class Problems:
    """An ordered collection of problems, errors first when listed."""

    items: list[Problem] = field(default_factory=list)

    def add(self, problem: Problem) -> None:
        if problem not in self.items:
            self.items.append(problem)

    def extend(self, other: Problems) -> None:
        for problem in other.items:
            self.add(problem)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.level == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.level == WARNING]

    def __bool__(self) -> bool:
        return bool(self.errors)


class ConfigError(Exception):
    """The config files cannot be applied; `problems` says why (each with file, id and key)."""

    def __init__(self, problems: list[Problem], summary: str = "") -> None:
        self.problems = problems
        self.summary = summary or f"{len(problems)} error(s) in the config files"
        super().__init__(self.summary + "\n" + "\n".join(str(p) for p in problems))
