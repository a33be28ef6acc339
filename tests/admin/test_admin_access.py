"""Who may do what: logs are read-only, non-staff users go to the login page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from core import models as m

LOGS = [m.Run, m.Import, m.Export]


@pytest.mark.parametrize("model", LOGS, ids=lambda model: model.__name__)
def test_logs_are_read_only(admin_client, world, model):
    name = model._meta.model_name
    obj = model.objects.first()
    count = model.objects.count()

    assert admin_client.get(reverse(f"admin:core_{name}_add")).status_code == 403
    assert admin_client.post(reverse(f"admin:core_{name}_add"), {}).status_code == 403
    change = reverse(f"admin:core_{name}_change", args=[obj.pk])
    view = admin_client.get(change)
    assert view.status_code == 200
    assert (
        'type="submit"' not in view.content.decode().split('id="footer"')[0].split("<form", 2)[-1]
    )
    assert admin_client.post(change, {}).status_code == 403
    assert (
        admin_client.post(
            reverse(f"admin:core_{name}_delete", args=[obj.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert model.objects.count() == count


def test_non_staff_users_are_sent_to_the_login_page(client, world):
    user = get_user_model().objects.create_user("visitor", password="pw-visitor-123")
    client.force_login(user)
    for url in (
        reverse("admin:index"),
        reverse("admin:core_app_changelist"),
        reverse("admin:core_app_change", args=[world["app"].pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_anonymous_users_are_sent_to_the_login_page(client, world):
    response = client.get(reverse("admin:core_source_preview", args=[world["source"].pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
