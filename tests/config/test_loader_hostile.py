"""Hostile config directories: data nested too deeply, files that are not regular files (a FIFO,
a link to /dev/zero), links leading out of the directory, slow JSON5 and a directory too large
in all. Each is an error naming the file; reading never raises, never hangs and never reads
more than the limits."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.config import loader
from core.config.validate import config_validate
from tests.config.conftest import write_config

MODEL = {"id": "users", "class": "Model", "name": "Users", "type": "profile"}


def validate_quickly(directory, seconds: float = 20.0):
    """config_validate in a thread, failing the test (not hanging it) if it does not return."""
    outcome: dict = {}

    def target():
        try:
            outcome["config"] = config_validate(directory=directory)
        except BaseException as exc:  # noqa: BLE001 - the test reports what escaped
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"validate did not return within {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["config"]


def errors_by_file(config) -> dict[str, str]:
    return {p.file: p.message for p in config.problems.errors}


def test_json_nested_very_deep_is_an_error_naming_the_file(tmp_path):
    write_config(tmp_path, {
        "deep.json": "[" * 200_000 + "{}" + "]" * 200_000,
        "deep5.json": "// json5\n" + '{a:' * 900 + "1" + "}" * 900,
        "deep_but_parsable.json": json.dumps(MODEL | {"options": {"x": [[[[[[[[1]]]]]]]] * 1}})
        .replace("[1]", "[" * 90 + "1" + "]" * 90),
        "models.json": MODEL,
    })  # fmt: skip
    config = validate_quickly(tmp_path)
    errors = errors_by_file(config)
    for name in ("deep.json", "deep5.json", "deep_but_parsable.json"):
        assert "nested too deeply" in errors[name], errors
    assert [s.id for s in config.specs] == ["users"]


def test_validate_reports_deep_nesting_without_a_traceback(tmp_path, capsys):
    write_config(tmp_path, {"deep.json": "[" * 200_000 + "{}" + "]" * 200_000})
    with pytest.raises(CommandError):
        call_command("validate", str(tmp_path))
    err = capsys.readouterr().err
    assert "deep.json: is nested too deeply" in err and "Traceback" not in err


def test_a_fifo_or_a_link_to_a_device_is_an_error_naming_it_and_nothing_hangs(tmp_path):
    write_config(tmp_path, {"models.json": MODEL})
    os.mkfifo(tmp_path / "f.json")
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    started = time.monotonic()
    config = validate_quickly(tmp_path)
    assert time.monotonic() - started < 10
    errors = errors_by_file(config)
    assert "is a FIFO (named pipe), not a regular file" in errors["f.json"]
    assert "is a symbolic link to /dev/zero" in errors["zero.json"]
    assert [s.id for s in config.specs] == ["users"]


def test_a_file_is_read_at_most_one_byte_past_the_limit_whatever_its_size_claims(
    tmp_path, settings, monkeypatch
):
    settings.GROUPAROO_CONFIG_MAX_FILE_BYTES = 1000
    write_config(tmp_path, {"models.json": MODEL})
    reads: list[int] = []
    real_read = os.read

    def counting_read(fd, n):
        data = real_read(fd, n)
        reads.append(len(data))
        return data

    # a file whose size says 0 but which is long (as /proc files and devices do) is cut off
    monkeypatch.setattr(loader.os, "read", counting_read)
    real_fstat = os.fstat
    monkeypatch.setattr(
        loader.os, "fstat",
        lambda fd: os.stat_result((*real_fstat(fd)[:6], 0, *real_fstat(fd)[7:])),
    )  # fmt: skip
    (tmp_path / "big.json").write_text(json.dumps(MODEL) + " " * 100_000)
    errors = errors_by_file(validate_quickly(tmp_path))
    assert "larger than that, over the 1,000 bytes limit for a config file" in errors["big.json"]
    small = (tmp_path / "models.json").stat().st_size
    assert max(reads) <= 1001 and sum(reads) <= 1001 + small


def test_links_out_of_the_directory_are_refused_and_links_within_it_are_followed(tmp_path):
    outside = tmp_path / "outside"
    directory = tmp_path / "config"
    write_config(outside, {"secret.json": MODEL | {"id": "outside_model"}})
    write_config(directory, {"real/models.json": MODEL})
    (directory / "leak.json").symlink_to(outside / "secret.json")
    (directory / "up.json").symlink_to("../outside/secret.json")
    (directory / "again.json").symlink_to("real/models.json")
    config = validate_quickly(directory)
    errors = errors_by_file(config)
    target = (outside / "secret.json").resolve()
    for name in ("leak.json", "up.json"):
        assert f"is a symbolic link to {target}, outside the config directory" in errors[name]
    assert "again.json" not in errors
    # the link within the directory is read like the file it points at
    loaded = loader.load_directory(directory)
    assert sorted(o.file for o in loaded.objects) == ["again.json", "real/models.json"]


def test_json5_files_are_capped_so_the_worst_case_reads_in_seconds(tmp_path):
    # short array items are the slowest shape found for the json5 package (about 40 µs a
    # byte): a file of them just under the cap still parses within seconds
    head = "// numbers\n[{},"
    count = (loader.MAX_JSON5_BYTES - len(head) - 2) // 2
    text = head + "1," * count + "1]"
    assert loader.MAX_JSON5_BYTES - 2 <= len(text) <= loader.MAX_JSON5_BYTES
    started = time.monotonic()
    assert len(loader._parse_json(text.encode())) == count + 2
    assert time.monotonic() - started < 10, "the JSON5 worst case takes too long"

    # 100,000 keys (0.9 MB) took 15 s before the cap: now refused at once, naming the limit
    keys = "// keys\n{" + ",".join(f"k{i}: 1" for i in range(100_000)) + "}"
    write_config(tmp_path, {"keys.json": keys})
    started = time.monotonic()
    [problem] = loader.load_directory(tmp_path).problems.errors
    assert time.monotonic() - started < 2
    assert problem.file == "keys.json"
    assert "over the 65,536 bytes limit for JSON5" in problem.message


def test_the_directory_as_a_whole_has_a_size_limit(tmp_path, settings, monkeypatch):
    assert loader.max_total_bytes() == 50 * 1024 * 1024
    write_config(
        tmp_path, {f"m{i}.json": MODEL | {"id": f"m{i}", "name": f"M{i}"} for i in range(5)}
    )
    size = (tmp_path / "m0.json").stat().st_size
    monkeypatch.setenv("GROUPAROO_CONFIG_MAX_TOTAL_BYTES", str(size * 3 + 1))
    config = validate_quickly(tmp_path)
    [problem] = config.problems.errors
    assert problem.file == "m3.json"
    assert f"over the {size * 3 + 1:,} bytes limit for all of them together" in problem.message
    assert "GROUPAROO_CONFIG_MAX_TOTAL_BYTES" in problem.message
    settings.GROUPAROO_CONFIG_MAX_TOTAL_BYTES = size * 5  # a Django setting wins
    assert validate_quickly(tmp_path).ok
