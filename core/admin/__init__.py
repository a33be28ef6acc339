"""The Django admin: the management UI. One module per aggregate; importing them registers every
model with `django.contrib.admin.site` (Django's autodiscovery imports this package)."""

from django.contrib import admin

from core.admin import access as access
from core.admin import apps as apps
from core.admin import destinations as destinations
from core.admin import groups as groups
from core.admin import properties as properties
from core.admin import records as records
from core.admin import runs as runs
from core.admin import sources as sources

admin.site.site_header = "Grouparoo"
admin.site.site_title = "Grouparoo"
admin.site.index_title = "Management"
