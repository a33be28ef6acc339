"""`manage.py ensure_admin`: make sure an admin (superuser) login exists. Idempotent.

The username is `GROUPAROO_ADMIN_USERNAME` (default "admin"). When the user is created, the
password is `GROUPAROO_ADMIN_PASSWORD` if set (never printed), otherwise a random one that is
printed once, now, and never again. An existing user is left untouched, so running this on
every `make run` is safe.
"""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

DEFAULT_USERNAME = "admin"


class Command(BaseCommand):
    help = "Create the admin superuser if it does not exist (password printed once when random)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--username",
            default=None,
            help="Username (default: $GROUPAROO_ADMIN_USERNAME or 'admin').",
        )

    def handle(self, *args, username: str | None = None, **options) -> None:
        User = get_user_model()
        username = username or os.environ.get("GROUPAROO_ADMIN_USERNAME") or DEFAULT_USERNAME
        given_password = os.environ.get("GROUPAROO_ADMIN_PASSWORD") or ""
        email = os.environ.get("GROUPAROO_ADMIN_EMAIL", "")

        with transaction.atomic():
            if User._default_manager.filter(**{User.USERNAME_FIELD: username}).exists():
                self.stdout.write(f"Admin user {username!r} already exists; left unchanged.")
                return
            password = given_password or secrets.token_urlsafe(12)
            User._default_manager.create_superuser(
                **{User.USERNAME_FIELD: username}, email=email, password=password
            )

        if given_password:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created admin user {username!r} with the password from GROUPAROO_ADMIN_PASSWORD."
                )
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(f"Created admin user {username!r} with password: {password}")
            )
            self.stdout.write(
                "This password is shown only once. Change it in the admin (top right, "
                "'Change password') or with: manage.py changepassword " + username
            )
