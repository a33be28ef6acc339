"""The REST API under /api/v1/ (DESIGN.md section 7, STYLE.md 8.5): DRF ViewSets over the
services, API-key authentication with per-topic read/write permissions, django-filter
FilterSets, and an OpenAPI schema (drf-spectacular)."""
