# A webhook URL's credentials (user info, token-like query values) were kept in the plain
# `options` JSON. Options of type "url" now keep the URL masked there and the whole URL in the
# encrypted `secret_options` (connectors/url_credentials.py): this moves the URLs stored before.
# Only apps whose URL holds credentials are read and written (their secrets are decrypted for
# that). Running it again changes nothing. The reverse keeps the new layout: connector_options()
# lays the secret options over the plain ones, so the connector still gets the whole URL.

from django.db import migrations


def split_url_credentials(apps, schema_editor):
    from connectors import registry
    from connectors.url_credentials import mask_url, split_url_options, url_option_keys

    App = apps.get_model("core", "App")
    for app in App.objects.defer("secret_options").order_by("pk").iterator():
        try:
            declared = registry.get_app(app.type).options
        except registry.UnknownConnector:
            continue
        options = dict(app.options or {})
        keys = url_option_keys(declared)
        if not any(
            isinstance(options.get(k), str) and mask_url(options[k]) != options[k] for k in keys
        ):
            continue
        secrets = dict(app.secret_options or {})
        plain, secrets, errors = split_url_options(
            declared, options, secrets, {**options, **secrets}
        )
        if errors:
            continue  # a URL already masked with nothing stored: the connector says so at use
        app.options, app.secret_options = plain, secrets
        app.save(update_fields=["options", "secret_options"])


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0015_run_follow_up_and_signature"),
    ]

    operations = [
        migrations.RunPython(split_url_credentials, migrations.RunPython.noop),
    ]
