"""Assemble a config directory the way Grouparoo's demo does (`grouparoo demo --config`).

The demo keeps its config files in folders by purpose (plugin @grouparoo/demo, `configFiles.ts`):
`setup/` (the team), `shared/` (the apps), one folder per model (`users/`, `accounts/`,
`admins/`), one per database with what only that database has (`postgres/users/`, ...), and one
per destination (`logger/all/`, `logger/users/`). It copies the contents of the folders it needs
into one directory, writes the database's connection options (every value a string) into
`apps/demo_db.json`, and replaces `DBNAME` everywhere with the database's plugin name
(`postgres`, `mysql`, `sqlite`). `assemble` does the same from {relative path: text}, so the
same code builds our fixture (tests/config/fixtures/grouparoo_demo/) and, when the Grouparoo
mirror is present, the demo's own files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

MODELS = ("users", "accounts", "admins")


def read_directory(directory: Path) -> dict[str, str]:
    """{relative path: text} of every file under `directory`."""
    return {
        p.relative_to(directory).as_posix(): p.read_text()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def app_options(db: str, connection: Mapping[str, object]) -> dict[str, str]:
    """The demo app's options for `db`, as the demo's connection classes give them: PostgreSQL
    host/port/database/schema/user/password and MySQL host/port/database/user/password, every
    value a string (the port too: "5432"); SQLite `file`."""
    keys = {
        "postgres": ("host", "port", "database", "schema", "user", "password"),
        "mysql": ("host", "port", "database", "user", "password"),
        "sqlite": ("file",),
    }[db]
    return {key: str(connection.get(key) or "") for key in sorted(keys)}


def assemble(
    files: Mapping[str, str],
    target: Path,
    *,
    db: str,
    options: Mapping[str, str],
    models: Iterable[str] = MODELS,
    destinations: Iterable[str] = ("logger",),
    setup: bool = True,
) -> Path:
    """Write the demo's config for `db` into `target` (which must not exist) and return it."""
    models = list(models)
    folders = (["setup"] if setup else []) + ["shared"]
    for model in models:
        folders += [model, f"{db}/{model}"]
    for destination in destinations:
        folders += [f"{destination}/all"] + [f"{destination}/{model}" for model in models]
    target.mkdir(parents=True)
    for folder in folders:  # later folders overwrite earlier ones, as fs.copySync does
        prefix = folder + "/"
        for rel, text in sorted(files.items()):
            if not rel.startswith(prefix):
                continue
            out = target / rel[len(prefix) :]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
    app = target / "apps" / "demo_db.json"
    if app.exists():
        content = json.loads(app.read_text())
        content["options"] = {key: options[key] for key in sorted(options)}
        app.write_text(json.dumps(content))
    for path in target.rglob("*.json"):
        path.write_text(path.read_text().replace("DBNAME", db))
    return target


def read_git(repo: Path, ref: str, prefix: str) -> dict[str, str]:
    """{path below `prefix`: text} of the files under `prefix` at `ref` of the bare git
    repository `repo`, read with `git show` (the repository is only read)."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
        ).stdout

    names = git("ls-tree", "-r", "--name-only", ref, prefix).split("\n")
    return {n[len(prefix) :]: git("show", f"{ref}:{n}") for n in names if n.startswith(prefix)}
