"""The destination contract (connectors/base.py, DESIGN.md sections 4-5): the same tests against
every built-in destination type. Each case reads back what its destination holds (a table, a
CSV file, a webhook receiver's store) as {key: (properties, groups)}. A new destination
connector adds a case in tests/connectors/contract.py."""
from __future__ import annotations

import pytest

from connectors import registry
from connectors.base import ExportPayload, ExportResult, MappingOptions, SyncOperations
from tests.connectors.contract import (
    DESTINATION_TYPES,
    OUTSIDE_CONTRACT_DESTINATION_TYPES,
    PLUGIN_DESTINATION_TYPES,
    DestinationCase,
    make_destination_case,
)

SYNC = SyncOperations.for_mode("sync")
ADDITIVE = SyncOperations.for_mode("additive")
ENRICH = SyncOperations.for_mode("enrich")

_ids = iter(range(1, 1_000_000))


def payload(new=None, old=None, groups=(), old_groups=(), delete=False):
    return ExportPayload(
        export_id=next(_ids), record_id=int((new or old or {}).get("id", 0)),
        old_properties=dict(old or {}), new_properties=dict(new or {}),
        old_groups=list(old_groups), new_groups=list(groups), to_delete=delete,
    )


@pytest.fixture(params=DESTINATION_TYPES + PLUGIN_DESTINATION_TYPES)
def case(request, tmp_path):
    c = make_destination_case(request.param, request, tmp_path)
    yield c
    c.close()


def send(case: DestinationCase, batch: list[ExportPayload], operations: SyncOperations = SYNC) -> list[ExportResult]:
    results = case.connector.export_batch(batch, operations=operations)
    assert [r.export_id for r in results] == [p.export_id for p in batch]  # one each, in order
    assert all(r.success for r in results), results
    return results


ANN = {"id": 1, "email": "a@x.test", "name": "Ann"}
BEN = {"id": 2, "email": "b@x.test", "name": "Ben"}


def test_every_builtin_destination_has_a_case():
    builtin = {key for key, cls in registry._destinations.items() if cls.__module__.startswith("connectors.")}
    assert builtin == set(DESTINATION_TYPES) | set(OUTSIDE_CONTRACT_DESTINATION_TYPES)


def test_declares_itself(case: DestinationCase):
    cls = registry.get_destination(case.type)
    assert cls.key == case.type and cls.label and registry.get_app(cls.app_key)
    options = case.connector.mapping_options()
    assert isinstance(options, MappingOptions)
    assert all(name for name, _ in options.required + options.known)


def test_empty_batch_sends_nothing(case: DestinationCase):
    assert case.connector.export_batch([], operations=SYNC) == []
    assert case.state() == {}


def test_creates_then_updates_records_and_groups(case: DestinationCase):
    send(case, [payload(ANN, groups=["vip", "new"]), payload(BEN, groups=["new"])])
    assert case.state() == {
        "1": ({"email": "a@x.test", "name": "Ann"}, {"vip", "new"}),
        "2": ({"email": "b@x.test", "name": "Ben"}, {"new"}),
    }
    send(case, [payload({**ANN, "name": "Annie"}, old=ANN, groups=["vip"], old_groups=["vip", "new"])])
    assert case.state()["1"] == ({"email": "a@x.test", "name": "Annie"}, {"vip"})
    assert case.state()["2"] == ({"email": "b@x.test", "name": "Ben"}, {"new"})


def test_sending_the_same_batch_twice_equals_once(case: DestinationCase):
    send(case, [payload(ANN, groups=["a"]), payload(BEN, groups=["b"])])
    batch = [
        payload({**ANN, "name": "Annie"}, old=ANN, groups=["a", "c"], old_groups=["a"]),
        payload(BEN, old=BEN, old_groups=["b"], delete=True),
        payload({"id": 3, "email": "c@x.test"}, groups=["c"]),
    ]
    send(case, batch)
    once = case.state()
    send(case, batch)
    assert case.state() == once
    assert once == {"1": ({"email": "a@x.test", "name": "Annie"}, {"a", "c"}), "3": ({"email": "c@x.test"}, {"c"})}


def test_delete_in_sync_mode_removes_the_record(case: DestinationCase):
    send(case, [payload(ANN, groups=["a"]), payload(BEN, groups=["a"])])
    send(case, [payload(ANN, old=ANN, old_groups=["a"], delete=True)])
    assert set(case.state()) == {"2"}


def test_leaving_record_without_deletes_keeps_it_and_loses_its_groups(case: DestinationCase):
    send(case, [payload(ANN, groups=["a", "b"])])
    for mode in (ADDITIVE, ENRICH):
        send(case, [payload(ANN, old=ANN, old_groups=["a", "b"], delete=True)], mode)
        assert case.state() == {"1": ({"email": "a@x.test", "name": "Ann"}, set())}


def test_leaving_record_without_deletes_is_updated_with_its_current_values(case: DestinationCase):
    send(case, [payload(ANN, groups=["a"])])
    send(case, [payload({**ANN, "name": "Annie"}, old=ANN, old_groups=["a"], delete=True)], ADDITIVE)
    assert case.state() == {"1": ({"email": "a@x.test", "name": "Annie"}, set())}
    send(case, [payload({**ANN, "name": "Anna"}, old={**ANN, "name": "Annie"}, delete=True)], ENRICH)
    assert case.state() == {"1": ({"email": "a@x.test", "name": "Anna"}, set())}


def test_groups_others_wrote_are_kept(case: DestinationCase):
    """Another destination writing to the same place: each removes only the groups it wrote
    before (old_groups) and no longer has."""
    other = type(case.connector)(case.connector.app_options, case.connector.destination_options)
    case.closers.append(other.close)
    send(case, [payload(ANN, groups=["a", "b"])])
    assert all(r.success for r in other.export_batch([payload(ANN, groups=["x"])], operations=SYNC))
    assert case.state()["1"][1] == {"a", "b", "x"}
    send(case, [payload(ANN, old=ANN, groups=["b", "c"], old_groups=["a", "b"])])
    assert case.state()["1"][1] == {"b", "c", "x"}
    send(case, [payload(ANN, old=ANN, old_groups=["b", "c"], delete=True)], ADDITIVE)
    assert case.state() == {"1": ({"email": "a@x.test", "name": "Ann"}, {"x"})}


def test_enrich_updates_records_it_has_and_creates_none(case: DestinationCase):
    send(case, [payload(ANN)])
    send(case, [payload({**ANN, "name": "Annie"}, old=ANN, groups=["vip"]), payload(BEN, groups=["vip"])], ENRICH)
    assert case.state() == {"1": ({"email": "a@x.test", "name": "Annie"}, {"vip"})}


def test_additive_creates_and_updates(case: DestinationCase):
    send(case, [payload(ANN, groups=["a"])], ADDITIVE)
    send(case, [payload({**ANN, "name": "Annie"}, old=ANN, groups=["a"], old_groups=["a"]), payload(BEN)], ADDITIVE)
    assert case.state() == {
        "1": ({"email": "a@x.test", "name": "Annie"}, {"a"}),
        "2": ({"email": "b@x.test", "name": "Ben"}, set()),
    }


def test_a_property_no_longer_sent_is_cleared(case: DestinationCase):
    send(case, [payload(ANN)])
    send(case, [payload({"id": 1, "email": "a@x.test"}, old=ANN)])
    assert case.state() == {"1": ({"email": "a@x.test"}, set())}


def test_a_changed_key_moves_the_record(case: DestinationCase):
    send(case, [payload(ANN, groups=["vip"])])
    send(case, [payload({**ANN, "id": 10}, old=ANN, groups=["vip"], old_groups=["vip"])])
    assert case.state() == {"10": ({"email": "a@x.test", "name": "Ann"}, {"vip"})}


def test_a_record_without_the_required_key_fails_finally(case: DestinationCase):
    required = [name for name, _ in case.connector.mapping_options().required]
    if not required:
        pytest.skip(f"{case.type} requires no field")
    [result] = case.connector.export_batch([payload({"email": "a@x.test"})], operations=SYNC)
    assert not result.success and result.level == "info" and required[0] in result.error
    assert case.state() == {}


def test_many_records_in_one_batch(case: DestinationCase):
    batch = [payload({"id": i, "email": f"u{i}@x.test"}, groups=["all"] + (["even"] if i % 2 == 0 else []))
             for i in range(1, 121)]
    send(case, batch)
    state = case.state()
    assert len(state) == 120
    assert state["42"] == ({"email": "u42@x.test"}, {"all", "even"})
