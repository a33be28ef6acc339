"""The CSV file source and destination, on real files: what the contract suites do not cover
(detection, dialects, unreadable files, paths, atomic replacement, uploads)."""
from __future__ import annotations

import csv
import io
import os
import threading

import pytest

from connectors import registry
from connectors.base import ConnectorError, ExportPayload, PropertySpec, SyncOperations
from connectors.csv_file import resolve_path, store_upload

SYNC = SyncOperations.for_mode("sync")
_ids = iter(range(1, 1_000_000))


def source(path, app=None, **options):
    return registry.get_source("csv-file")(app or {}, {"path": str(path), **options})


def destination(path, app=None, **options):
    return registry.get_destination("csv-export")(app or {}, {"path": str(path), "primaryKey": "id", **options})


def payload(new, old=None, groups=(), delete=False):
    return ExportPayload(next(_ids), 0, dict(old or {}), dict(new), [], list(groups), delete)


def read_all(src, key="id", **kw):
    batch = src.read_batch(key_column=key, columns=None, watermark_column=kw.pop("watermark_column", None),
                           since=kw.pop("since", None), after=None, limit=5000, filters=kw.pop("filters", []))
    return batch.rows


# --- source -------------------------------------------------------------------------------


def test_header_names_columns_and_types_are_detected_from_the_whole_file(tmp_path):
    rows = ["id,zip,score,active,seen_at,note"] + [f"{i},0{i}123,{i},true,2024-01-0{i % 9 + 1} 10:00:00,n{i}" for i in range(1, 3000)]
    rows.append("3000,99999,not a number,false,2024-02-01 10:00:00,late")  # a late row changes the type
    path = tmp_path / "people.csv"
    path.write_text("\n".join(rows) + "\n")
    columns = {c.name: c.type for c in source(path).list_columns()}
    assert columns == {"id": "integer", "zip": "string", "score": "string", "active": "boolean",
                       "seen_at": "date", "note": "string"}
    got = read_all(source(path))
    assert len(got) == 3000 and got[0]["zip"] == "01123" and got[-1]["score"] == "not a number"


def test_sums_of_decimal_amounts_are_exact(tmp_path):
    """DuckDB reads 0.10 and 509.17 as DOUBLE: their sums are not left as 0.30000000000000004
    or 509.16999999999996, and a key without rows sums to 0 (as Grouparoo's sources do)."""
    path = tmp_path / "purchases.csv"
    path.write_text("id,user_id,amount\n1,1,0.10\n2,1,0.20\n3,2,273.78\n4,2,55.41\n5,2,179.98\n")
    spec = PropertySpec("total", {"column": "amount", "aggregationMethod": "sum"}, (), False)
    out = source(path).aggregate(properties=[spec], key_column="user_id", key_property="userId", keys=[1, 2, 3])
    assert {k: str(v["total"]) for k, v in out.items()} == {1: "0.3", 2: "509.17", 3: "0"}


def test_quoting_and_delimiters(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text('id;name;city\n1;"Smith; John";"New\nYork"\n2;"Quote ""Q""";Paris\n')
    rows = read_all(source(path))
    assert [r["name"] for r in rows] == ["Smith; John", 'Quote "Q"']
    assert rows[0]["city"] == "New\nYork"
    tabs = tmp_path / "tabs.tsv"
    tabs.write_text("id\tname\n1\tAnn\n")
    assert read_all(source(tabs, delimiter="\\t")) == [{"id": 1, "name": "Ann"}]
    with pytest.raises(ConnectorError) as info:
        source(tabs, delimiter="::").preview(1)
    assert info.value.permanent and "one character" in info.value.message


def test_watermark_column_is_optional_and_works(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("id,updated\n1,2024-01-01T10:00:00Z\n2,2024-01-02T10:00:00Z\n3,2024-01-02T10:00:00Z\n")
    src = source(path)
    top = src.max_watermark(watermark_column="updated", filters=[])
    assert top == "2024-01-02T10:00:00+00:00"
    assert [r["id"] for r in read_all(src, watermark_column="updated", since=top)] == [2, 3]
    assert [r["id"] for r in read_all(src)] == [1, 2, 3]


@pytest.mark.parametrize("content, expected", [
    (None, "does not exist"),
    ("", "is empty"),
    (b"id,name\n1,\xff\xfe broken\n", "not utf-8"),
])
def test_unreadable_files_fail_clearly(tmp_path, content, expected):
    path = tmp_path / "bad.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConnectorError) as info:
        source(path).preview(5)
    assert expected in info.value.message.lower()
    assert "Traceback" not in info.value.message
    with pytest.raises(ConnectorError):
        source(tmp_path).preview(5)  # a directory


def test_a_rewritten_file_is_detected_again(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("id,n\n1,1\n2,2\n")
    src = source(path)
    assert [r["n"] for r in read_all(src)] == [1, 2]
    path.write_text("id,n\n1,one\n2,two\n")
    with pytest.raises(ConnectorError) as info:
        read_all(src)  # the types read before no longer fit: a retryable error...
    assert not info.value.permanent
    assert [r["n"] for r in read_all(src)] == ["one", "two"]  # ...and the next call detects again


def test_the_source_reads_only_its_own_file(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("id,name\n1,Ann\n")
    src = source(path)
    evil = "x') UNION SELECT * FROM read_csv('/etc/passwd"
    assert src.count(watermark_column=None, since=None, filters=[{"key": "name", "op": "eq", "match": evil}]) == 0
    assert src.count(watermark_column=None, since=None, filters=[{"key": "name", "op": "eq", "match": "Ann"}]) == 1
    conn = src._connection()
    with pytest.raises(Exception, match="disabled"):
        conn.execute("SELECT * FROM read_text('/etc/hostname')")
    src.close()


def test_paths_relative_to_the_base_directory_and_never_outside(tmp_path):
    base = tmp_path / "base"
    (base / "sub").mkdir(parents=True)
    (base / "sub" / "a.csv").write_text("id\n1\n")
    (tmp_path / "secret.csv").write_text("id\n42\n")
    os.symlink(tmp_path / "secret.csv", base / "link.csv")
    app = {"baseDirectory": str(base)}
    assert resolve_path(app, "sub/a.csv") == str(base / "sub" / "a.csv")
    assert read_all(source("sub/a.csv", app)) == [{"id": 1}]
    for escape in ("../secret.csv", str(tmp_path / "secret.csv"), "link.csv"):
        with pytest.raises(ConnectorError) as info:
            source(escape, app).preview(1)
        assert info.value.permanent and "outside the base directory" in info.value.message
    with pytest.raises(ConnectorError) as info:
        source("relative.csv").preview(1)
    assert "absolute path" in info.value.message


def test_app_test_connection(tmp_path):
    (tmp_path / "a.csv").write_text("id\n1\n")
    message = registry.get_app("csv")({"baseDirectory": str(tmp_path)}).test_connection()
    assert message == f"Base directory {tmp_path}: 1 CSV files, writable"
    with pytest.raises(ConnectorError) as info:
        registry.get_app("csv")({"baseDirectory": str(tmp_path / "nope")}).test_connection()
    assert info.value.permanent and "does not exist" in info.value.message
    assert "absolute paths" in registry.get_app("csv")({}).test_connection()


# --- uploads ------------------------------------------------------------------------------


class Upload:
    """What the admin hands over: a Django UploadedFile's name and chunks()."""

    def __init__(self, name: str, data: bytes):
        self.name, self.data = name, data

    def chunks(self):
        yield self.data[:5]
        yield self.data[5:]


def test_uploads_are_stored_under_media_csv_and_readable(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    path = store_upload(Upload("../../Customers Export (1).csv", b"id,email\n1,a@x.test\n"))
    assert os.path.dirname(path) == str(tmp_path / "media" / "csv")
    assert os.path.basename(path).endswith("-Customers_Export_1.csv")
    assert read_all(source(path)) == [{"id": 1, "email": "a@x.test"}]
    other = store_upload(io.BytesIO(b"id\n2\n"), media_root=tmp_path / "m2")
    assert other != path and open(other).read() == "id\n2\n"
    with pytest.raises(ConnectorError):
        store_upload(Upload("x.csv", b"PK\x03\x04\x00\x00 a zip file"), media_root=tmp_path / "m3")
    assert os.listdir(tmp_path / "m3" / "csv") == []  # nothing half-stored


# --- destination --------------------------------------------------------------------------


def test_file_layout_new_columns_and_groups(tmp_path):
    path = tmp_path / "out.csv"
    dest = destination(path)
    dest.export_batch([payload({"id": 2, "email": "b@x.test"}, groups=["vip", "a b"]),
                       payload({"id": 1, "email": "a@x.test", "tags": ["x", "y"], "ok": True, "n": 3.0})], operations=SYNC)
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id", "email", "groups", "tags", "ok", "n"]
    assert rows[1] == ["2", "b@x.test", "a b;vip", "", "", ""]
    assert rows[2] == ["1", "a@x.test", "", '["x", "y"]', "true", "3"]
    assert dict(dest.mapping_options().known) == {"id": "any", "email": "any", "tags": "any", "ok": "any", "n": "any"}


def test_a_group_name_holding_the_separator_is_removed_whole(tmp_path):
    """'x;y' is written joined like any name; when the record leaves it, it goes as one name,
    and names someone else wrote ('y' and 'z' by hand) stay."""
    path = tmp_path / "out.csv"
    dest = destination(path)

    def cells():
        with open(path, newline="") as handle:
            return [row["groups"] for row in csv.DictReader(handle)]

    dest.export_batch([payload({"id": 1}, groups=["x;y", "a"]), payload({"id": 2}, groups=["x;y"])], operations=SYNC)
    assert cells() == ["a;x;y", "x;y"]
    path.write_text(path.read_text().replace("2,x;y", "2,x;y;y;z"))  # 'y' and 'z' added by hand
    dest.export_batch([
        ExportPayload(3, 1, {"id": 1}, {"id": 1}, ["x;y", "a"], ["a"], False),
        ExportPayload(4, 2, {"id": 2}, {"id": 2}, ["x;y"], [], False),
    ], operations=SYNC)
    assert cells() == ["a", "y;z"]


def test_existing_columns_are_kept_and_a_foreign_file_is_refused(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("id,email,kept\n1,old@x.test,yes\n")
    destination(path, groupsColumn="").export_batch([payload({"id": 1, "email": "new@x.test"})], operations=SYNC)
    assert path.read_text() == "id,email,kept\n1,new@x.test,yes\n"
    other = tmp_path / "other.csv"
    other.write_text("user,email\n1,a@x.test\n")
    with pytest.raises(ConnectorError) as info:
        destination(other).export_batch([payload({"id": 1})], operations=SYNC)
    assert info.value.permanent and 'no column "id"' in info.value.message
    assert other.read_text() == "user,email\n1,a@x.test\n"


def test_a_missing_directory_fails_the_batch_permanently(tmp_path):
    with pytest.raises(ConnectorError) as info:
        destination(tmp_path / "nope" / "out.csv").export_batch([payload({"id": 1})], operations=SYNC)
    assert info.value.permanent and "does not exist" in info.value.message


def test_the_file_is_replaced_atomically(tmp_path):
    path = tmp_path / "out.csv"
    dest = destination(path)
    dest.export_batch([payload({"id": i, "email": f"u{i}@x.test"}) for i in range(500)], operations=SYNC)
    seen: list[tuple[int, bool]] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle))
            seen.append((len(rows), all(r["email"] and r["groups"] is not None for r in rows)))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for round_ in range(15):
            dest.export_batch([payload({"id": i, "email": f"r{round_}-{i}@x.test"}, groups=[f"g{round_}"])
                               for i in range(500)], operations=SYNC)
    finally:
        stop.set()
        thread.join()
    assert seen and all(count == 500 and whole for count, whole in seen)  # never a partial file
    assert sorted(os.listdir(tmp_path)) == [".out.csv.lock", "out.csv"]  # no temporary file left behind


def test_concurrent_batches_do_not_lose_updates(tmp_path):
    path = tmp_path / "out.csv"

    def send(start):
        destination(path).export_batch([payload({"id": start + i}) for i in range(50)], operations=SYNC)

    threads = [threading.Thread(target=send, args=(n * 100,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(path, newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 200


def test_keys_compare_as_text(tmp_path):
    path = tmp_path / "out.csv"
    dest = destination(path, groupsColumn="")
    dest.export_batch([payload({"id": "007", "v": "a"}), payload({"id": 7, "v": "b"}), payload({"id": 7.0, "v": "c"})], operations=SYNC)
    assert path.read_text() == "id,v\n007,a\n7,c\n"
