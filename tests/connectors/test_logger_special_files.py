"""The logger's file must be a regular file: a FIFO named as the log file made the test of
the app (and every export) wait for a reader for ever."""

from __future__ import annotations

import os

import pytest

from connectors.base import ConnectorError
from connectors.logger import LoggerApp


def test_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "exports.log"
    os.mkfifo(fifo)
    with pytest.raises(ConnectorError) as raised:
        LoggerApp({"filename": str(fifo)}).test_connection()
    assert raised.value.permanent


def test_a_device_is_refused_and_a_regular_file_is_created(tmp_path):
    with pytest.raises(ConnectorError, match="not a regular file"):
        LoggerApp({"filename": "/dev/null"}).test_connection()
    path = tmp_path / "exports.log"
    assert "confirmed" in LoggerApp({"filename": str(path)}).test_connection()
    assert path.is_file()
