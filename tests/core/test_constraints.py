"""Every invariant of the domain, tried and refused: by the database (IntegrityError) where it can
hold it, by `clean()` (ValidationError) where it spans tables.

Factories save without full_clean, so the database constraints are what stops the bad rows.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from connectors import registry
from connectors.base import (
    AppConnector,
    Batch,
    DestinationConnector,
    MappingOptions,
    SourceConnector,
)
from core import models as m
from core.choices import (
    DestinationCollection,
    ExportState,
    PropertyType,
    RuleOp,
    RunCreator,
    RunState,
)
from tests.factories import (
    make_app,
    make_destination,
    make_group,
    make_model,
    make_property,
    make_record,
    make_source,
)

pytestmark = pytest.mark.django_db

FAKE = "fake-constraints"


# Tiny connectors so Source/Destination.clean() get past the type check whatever connectors
# are installed; registered for this module's tests only.
class FakeApp(AppConnector):
    key = FAKE
    label = "Fake app"

    def test_connection(self) -> str:
        return "ok"


class FakeSource(SourceConnector):
    key = f"{FAKE}-table"
    app_key = FAKE
    label = "Fake source"

    def preview(self, limit=10):
        return []

    def list_columns(self):
        return []

    def read_batch(self, **kwargs):
        return Batch(rows=[], cursor=None)

    def max_watermark(self, **kwargs):
        return None

    def count(self, **kwargs):
        return 0

    def aggregate(self, **kwargs):
        return {}


class FakeDestination(DestinationConnector):
    key = f"{FAKE}-export"
    app_key = FAKE
    label = "Fake destination"

    def mapping_options(self):
        return MappingOptions()

    def export_batch(self, exports, *, operations):
        return []


@pytest.fixture(autouse=True)
def fake_connectors():
    tables = (
        (registry._apps, FakeApp),
        (registry._sources, FakeSource),
        (registry._destinations, FakeDestination),
    )
    for table, cls in tables:
        table[cls.key] = cls
    yield
    for table, cls in tables:
        table.pop(cls.key, None)


# -- properties ---------------------------------------------------------------------------------


def test_property_keys_are_unique_per_model():
    model = make_model()
    make_property(model=model, key="email")
    with transaction.atomic(), pytest.raises(IntegrityError):
        make_property(model=model, key="email")


def test_the_same_property_key_is_fine_in_another_model():
    make_property(model=make_model(), key="email")
    make_property(model=make_model(), key="email")


def test_a_model_has_at_most_one_primary_source():
    model = make_model()
    make_source(model=model, is_primary=True)
    make_source(model=model, is_primary=False)
    with transaction.atomic(), pytest.raises(IntegrityError):
        make_source(model=model, is_primary=True)


def test_a_model_has_at_most_one_primary_key_property():
    model = make_model()
    make_property(model=model, key="user_id", unique=True, is_primary_key=True)
    with transaction.atomic(), pytest.raises(IntegrityError):
        make_property(model=model, key="email", unique=True, is_primary_key=True)


def test_the_primary_key_must_be_unique_in_the_database():
    with transaction.atomic(), pytest.raises(IntegrityError):
        make_property(key="user_id", unique=False, is_primary_key=True)


def test_the_primary_key_cannot_be_an_array_in_the_database():
    with transaction.atomic(), pytest.raises(IntegrityError):
        make_property(key="user_id", unique=True, is_array=True, is_primary_key=True)


def test_a_unique_property_cannot_be_an_array_in_the_database():
    with transaction.atomic(), pytest.raises(IntegrityError):
        make_property(key="emails", unique=True, is_array=True)


@pytest.mark.parametrize("unique,is_array", [(False, False), (True, True), (False, True)])
def test_clean_refuses_a_primary_key_that_is_not_a_unique_scalar(unique, is_array):
    source = make_source()
    prop = m.Property(
        model=source.model,
        source=source,
        key="user_id",
        type=PropertyType.INTEGER,
        unique=unique,
        is_array=is_array,
        is_primary_key=True,
    )
    with pytest.raises(ValidationError):
        prop.clean()


def test_clean_refuses_a_property_whose_source_belongs_to_another_model():
    source = make_source()
    prop = m.Property(model=make_model(), source=source, key="email")
    with pytest.raises(ValidationError) as excinfo:
        prop.clean()
    assert "source" in excinfo.value.message_dict


# -- mappings ----------------------------------------------------------------------------------


def test_a_source_mapping_cannot_name_a_property_of_another_model():
    source = make_source()
    foreign = make_property(model=make_model(), key="user_id", unique=True)
    mapping = m.SourceMapping(source=source, remote_key="id", property=foreign)
    with pytest.raises(ValidationError) as excinfo:
        mapping.full_clean()
    assert "property" in excinfo.value.message_dict


def test_a_source_mapping_names_a_unique_property():
    source = make_source()
    not_unique = make_property(source=source, key="first_name", unique=False)
    mapping = m.SourceMapping(source=source, remote_key="first_name", property=not_unique)
    with pytest.raises(ValidationError):
        mapping.full_clean()


def test_a_destination_mapping_cannot_name_a_property_of_another_model():
    destination = make_destination()
    foreign = make_property(model=make_model(), key="email")
    mapping = m.DestinationMapping(destination=destination, remote_key="email", property=foreign)
    with pytest.raises(ValidationError) as excinfo:
        mapping.full_clean()
    assert "property" in excinfo.value.message_dict


def test_one_mapping_row_per_destination_field():
    destination = make_destination()
    email = make_property(model=destination.model, key="email")
    other = make_property(model=destination.model, key="work_email")
    m.DestinationMapping.objects.create(destination=destination, remote_key="email", property=email)
    with transaction.atomic(), pytest.raises(IntegrityError):
        m.DestinationMapping.objects.create(
            destination=destination, remote_key="email", property=other
        )


# -- groups ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "property_type,op",
    [
        (PropertyType.BOOLEAN, RuleOp.GT),
        (PropertyType.BOOLEAN, RuleOp.SUBSTRING),
        (PropertyType.DATE, RuleOp.SUBSTRING),
        (PropertyType.FLOAT, RuleOp.STARTS_WITH),
        (PropertyType.STRING, RuleOp.IN_LAST),
    ],
)
def test_a_group_rule_op_must_suit_its_property_type(property_type, op):
    group = make_group()
    prop = make_property(model=group.model, key=f"p_{property_type}", type=property_type)
    rule = m.GroupRule(
        group=group,
        property=prop,
        op=op,
        match="1",
        relative_match_number=3,
        relative_match_unit="days",
    )
    with pytest.raises(ValidationError) as excinfo:
        rule.clean()
    assert "op" in excinfo.value.message_dict


def test_a_group_rule_match_must_parse_for_its_property_type():
    group = make_group()
    prop = make_property(model=group.model, key="ltv", type=PropertyType.FLOAT)
    rule = m.GroupRule(group=group, property=prop, op=RuleOp.GT, match="lots")
    with pytest.raises(ValidationError) as excinfo:
        rule.clean()
    assert "match" in excinfo.value.message_dict


def test_a_group_rule_cannot_use_a_property_of_another_model():
    group = make_group()
    foreign = make_property(model=make_model(), key="ltv", type=PropertyType.FLOAT)
    rule = m.GroupRule(group=group, property=foreign, op=RuleOp.GT, match="5")
    with pytest.raises(ValidationError):
        rule.clean()


def test_a_suitable_group_rule_is_accepted():
    group = make_group()
    prop = make_property(model=group.model, key="ltv", type=PropertyType.FLOAT)
    m.GroupRule(group=group, property=prop, op=RuleOp.GT, match="500").clean()


def test_group_names_are_unique_per_model():
    model = make_model()
    make_group(model=model, name="VIPs")
    with transaction.atomic(), pytest.raises(IntegrityError):
        make_group(model=model, name="VIPs")


def test_one_membership_row_per_group_and_record():
    group = make_group()
    record = make_record(model=group.model)
    m.GroupMember.objects.create(group=group, record=record, joined_at=timezone.now())
    with transaction.atomic(), pytest.raises(IntegrityError):
        m.GroupMember.objects.create(group=group, record=record, joined_at=timezone.now())


# -- destinations --------------------------------------------------------------------------------


def fake_destination(**kw) -> m.Destination:
    app = make_app(type=FAKE, options={})
    return m.Destination(name="crm", app=app, type=FakeDestination.key, **kw)


def test_clean_refuses_tracking_a_group_of_another_model():
    model = make_model()
    destination = fake_destination(
        model=model, collection=DestinationCollection.GROUP, group=make_group(model=make_model())
    )
    with pytest.raises(ValidationError) as excinfo:
        destination.clean()
    assert "group" in excinfo.value.message_dict


def test_clean_accepts_tracking_a_group_of_the_same_model():
    model = make_model()
    destination = fake_destination(
        model=model, collection=DestinationCollection.GROUP, group=make_group(model=model)
    )
    destination.clean()


def test_clean_refuses_a_destination_type_of_another_app():
    destination = fake_destination(model=make_model())
    destination.app = make_app(name="other", type="some-other-app")
    with pytest.raises(ValidationError):
        destination.clean()


def test_a_group_collection_needs_a_group_in_the_database():
    with transaction.atomic(), pytest.raises(IntegrityError):
        make_destination(collection=DestinationCollection.GROUP, group=None)


def test_a_group_is_only_set_for_the_group_collection_in_the_database():
    model = make_model()
    with transaction.atomic(), pytest.raises(IntegrityError):
        make_destination(
            model=model, collection=DestinationCollection.MODEL, group=make_group(model=model)
        )


def test_clean_refuses_a_destination_group_membership_of_another_model():
    destination = make_destination()
    membership = m.DestinationGroupMembership(
        destination=destination, group=make_group(model=make_model()), remote_key="vips"
    )
    with pytest.raises(ValidationError):
        membership.clean()


def test_one_remote_list_per_destination_group():
    destination = make_destination()
    group = make_group(model=destination.model)
    m.DestinationGroupMembership.objects.create(
        destination=destination, group=group, remote_key="a"
    )
    with transaction.atomic(), pytest.raises(IntegrityError):
        m.DestinationGroupMembership.objects.create(
            destination=destination, group=group, remote_key="b"
        )


# -- schedules and runs ------------------------------------------------------------------------------


def test_one_schedule_per_source():
    source = make_source()
    m.Schedule.objects.create(source=source)
    with transaction.atomic(), pytest.raises(IntegrityError):
        m.Schedule.objects.create(source=source)


def test_a_recurring_schedule_needs_a_frequency_of_at_least_a_minute_in_the_database():
    with transaction.atomic(), pytest.raises(IntegrityError):
        m.Schedule.objects.create(source=make_source(), recurring=True, recurring_frequency=5)


def test_one_active_run_per_source_and_so_per_schedule():
    source = make_source()
    schedule = m.Schedule.objects.create(source=source)
    run = {"creator_type": RunCreator.SCHEDULE, "source": source, "schedule": schedule}
    m.Run.objects.create(**run, state=RunState.COMPLETE)
    m.Run.objects.create(**run, state=RunState.PENDING)
    with transaction.atomic(), pytest.raises(IntegrityError):
        m.Run.objects.create(**run, state=RunState.RUNNING)


def test_one_active_recompute_run_per_group():
    group = make_group()
    m.Run.objects.create(creator_type=RunCreator.GROUP, group=group, state=RunState.RUNNING)
    with transaction.atomic(), pytest.raises(IntegrityError):
        m.Run.objects.create(creator_type=RunCreator.GROUP, group=group, state=RunState.PENDING)


def test_manual_runs_without_a_source_or_group_are_not_limited():
    m.Run.objects.create(creator_type=RunCreator.MANUAL, state=RunState.RUNNING)
    m.Run.objects.create(creator_type=RunCreator.MANUAL, state=RunState.RUNNING)


# -- records -----------------------------------------------------------------------------------


def test_one_row_per_record_property_and_position():
    prop = make_property(key="tags", is_array=True)
    record = make_record(model=prop.model)
    m.RecordProperty.objects.create(
        record=record, property=prop, position=0, raw_value="a", value_text="a"
    )
    m.RecordProperty.objects.create(
        record=record, property=prop, position=1, raw_value="b", value_text="b"
    )
    with transaction.atomic(), pytest.raises(IntegrityError):
        m.RecordProperty.objects.create(
            record=record, property=prop, position=1, raw_value="c", value_text="c"
        )


def test_two_records_cannot_share_a_unique_identifier_value():
    prop = make_property(key="email", type=PropertyType.EMAIL, unique=True)
    alice, bob = make_record(model=prop.model), make_record(model=prop.model)
    m.RecordProperty.objects.create(
        record=alice,
        property=prop,
        raw_value="a@example.com",
        value_text="a@example.com",
        unique_value="a@example.com",
    )
    with transaction.atomic(), pytest.raises(IntegrityError):
        m.RecordProperty.objects.create(
            record=bob,
            property=prop,
            raw_value="a@example.com",
            value_text="a@example.com",
            unique_value="a@example.com",
        )


def test_records_without_an_identifier_value_do_not_collide():
    prop = make_property(key="email", type=PropertyType.EMAIL, unique=True)
    for _ in range(2):
        m.RecordProperty.objects.create(
            record=make_record(model=prop.model), property=prop, raw_value=None, unique_value=None
        )


def test_a_record_property_holds_at_most_one_typed_value():
    prop = make_property(key="ltv", type=PropertyType.FLOAT)
    with transaction.atomic(), pytest.raises(IntegrityError):
        m.RecordProperty.objects.create(
            record=make_record(model=prop.model),
            property=prop,
            raw_value="5",
            value_number=5.0,
            value_text="5",
        )


# -- exports -----------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [ExportState.PENDING, ExportState.PROCESSING])
def test_one_pending_and_one_processing_export_per_destination_and_record(state):
    destination = make_destination()
    record = make_record(model=destination.model)
    m.Export.objects.create(destination=destination, record=record, state=ExportState.COMPLETE)
    m.Export.objects.create(destination=destination, record=record, state=ExportState.COMPLETE)
    m.Export.objects.create(destination=destination, record=record, state=state)
    with transaction.atomic(), pytest.raises(IntegrityError):
        m.Export.objects.create(destination=destination, record=record, state=state)


def test_a_pending_export_may_wait_while_another_is_being_sent():
    destination = make_destination()
    record = make_record(model=destination.model)
    m.Export.objects.create(
        destination=destination,
        record=record,
        state=ExportState.PROCESSING,
        started_at=timezone.now() - dt.timedelta(seconds=5),
    )
    m.Export.objects.create(destination=destination, record=record, state=ExportState.PENDING)


# -- access --------------------------------------------------------------------------------------


def test_one_permission_row_per_api_key_and_topic():
    key = m.ApiKey.objects.create(name="ci", prefix="abc123", hashed_key="x" * 64)
    m.ApiKeyPermission.objects.create(api_key=key, topic="records")
    with transaction.atomic(), pytest.raises(IntegrityError):
        m.ApiKeyPermission.objects.create(api_key=key, topic="records", write=True)
