"""Starting a process loads every built-in connector, but not the DuckDB and MySQL drivers: they
are imported when a connector first uses them (connectors/lazy.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings

from connectors.duckdb import DUCKDB
from connectors.mysql import MYSQL


def test_loading_the_connectors_leaves_the_drivers_unimported():
    code = (
        "import sys, django; django.setup(); "
        "from connectors import registry; registry.load_builtins(); "
        "registry.get_app('duckdb'); registry.get_app('mysql'); "
        "print(sorted(m for m in ('duckdb', 'pymysql') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, capture_output=True, text=True, check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "grouparoo_site.settings"},
    ).stdout
    assert out.strip() == "[]"


def test_the_drivers_errors_are_the_real_ones():
    import duckdb
    import pymysql

    assert DUCKDB.driver_errors == (duckdb.Error,)
    assert MYSQL.driver_errors == (pymysql.err.MySQLError,)
