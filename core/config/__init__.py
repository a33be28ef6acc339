"""Config as code: Grouparoo-format config files (JSON/JSON5 and Node.js `.js`) validated,
applied, generated and exported. See docs/config.md.

- `core.config.validate.config_validate(directory=...)`: read and check, change nothing.
- `core.config.apply.config_apply(directory=..., plan_only=False)`: make the database match.
- `core.config.export.config_export(directory=...)`: write the database's configuration as files.
- `core.config.generate.config_generate(...)`: write new files from templates.
- `core.config.locks.locked_by_of(obj)`: the config file that owns an object (admin, API).
"""
