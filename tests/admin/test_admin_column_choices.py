"""Live column listings feed the mapping and filter inlines as choices (issue 6, item 5)."""
from __future__ import annotations

from django.urls import reverse

from core import models as m
from tests.engine.conftest import make_shop


def _page(client, obj) -> str:
    response = client.get(reverse(f"admin:core_{obj._meta.model_name}_change", args=[obj.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_source_mapping_offers_the_tables_columns(admin_client, tmp_path, db):
    shop = make_shop(tmp_path)
    html = _page(admin_client, shop.users)
    assert '<select name="mappings-0-remote_key"' in html
    for column in ("id", "email", "first_name", "ltv", "updated_at"):
        assert f'<option value="{column}"' in html


def test_schedule_and_property_filters_offer_the_sources_columns(admin_client, tmp_path, db):
    shop = make_shop(tmp_path)
    m.ScheduleFilter.objects.create(schedule=shop.users_schedule, key="ltv", op="gt", match="1")
    assert '<option value="ltv" selected>' in _page(admin_client, shop.users_schedule)
    m.PropertyFilter.objects.create(property=shop.props["total_spend"], key="amount", op="gt", match="1")
    html = _page(admin_client, shop.props["total_spend"])
    assert '<option value="purchased_at"' in html and '<option value="amount" selected>' in html


def test_destination_mapping_offers_the_tables_fields(admin_client, tmp_path, db):
    shop = make_shop(tmp_path)
    html = _page(admin_client, shop.destination)
    assert '<select name="mappings-0-remote_key"' in html
    assert '<option value="total_spend"' in html


def test_an_unreadable_source_keeps_a_text_box_and_the_page_renders(admin_client, tmp_path, db):
    shop = make_shop(tmp_path)
    m.Source.objects.filter(pk=shop.users.pk).update(options={"table": "gone"})
    html = _page(admin_client, m.Source.objects.get(pk=shop.users.pk))
    assert '<input type="text" name="mappings-0-remote_key"' in html
