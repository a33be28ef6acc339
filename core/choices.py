"""Every choice list of the domain. States, types and operations are never bare strings elsewhere."""
from __future__ import annotations

from django.db import models


class RecordModelType(models.TextChoices):
    PROFILE = "profile", "Profile"
    ACCOUNT = "account", "Account"
    EVENT = "event", "Event"
    CUSTOM = "custom", "Custom"


class ObjectState(models.TextChoices):
    """Lifecycle of configuration objects (apps, sources, properties, groups, destinations)."""

    DRAFT = "draft", "Draft"
    READY = "ready", "Ready"
    DELETED = "deleted", "Deleted"


class AggregationMethod(models.TextChoices):
    EXACT = "exact", "Exact"
    AVERAGE = "average", "Average"
    COUNT = "count", "Count"
    SUM = "sum", "Sum"
    MIN = "min", "Min"
    MAX = "max", "Max"
    MOST_RECENT = "most_recent", "Most recent value"
    LEAST_RECENT = "least_recent", "Least recent value"


# Grouparoo's spellings in config files ("most recent value", ...) -> ours.
AGGREGATION_ALIASES = {
    "exact": AggregationMethod.EXACT,
    "average": AggregationMethod.AVERAGE,
    "avg": AggregationMethod.AVERAGE,
    "count": AggregationMethod.COUNT,
    "sum": AggregationMethod.SUM,
    "min": AggregationMethod.MIN,
    "max": AggregationMethod.MAX,
    "most recent value": AggregationMethod.MOST_RECENT,
    "most_recent": AggregationMethod.MOST_RECENT,
    "least recent value": AggregationMethod.LEAST_RECENT,
    "least_recent": AggregationMethod.LEAST_RECENT,
}


class FilterOp(models.TextChoices):
    """Source and property filter operations (Grouparoo's short names)."""

    EQ = "eq", "equals"
    NE = "ne", "does not equal"
    EXISTS = "exists", "exists"
    NOT_EXISTS = "notExists", "does not exist"
    GT = "gt", "greater than"
    GTE = "gte", "greater than or equal to"
    LT = "lt", "less than"
    LTE = "lte", "less than or equal to"
    SUBSTRING = "substring", "contains"
    NOT_SUBSTRING = "notSubstring", "does not contain"
    IN = "in", "in a given set"


# Older filter words that users' files still carry.
FILTER_OP_ALIASES = {
    "equals": FilterOp.EQ,
    "does not equal": FilterOp.NE,
    "exists": FilterOp.EXISTS,
    "does not exist": FilterOp.NOT_EXISTS,
    "greater than": FilterOp.GT,
    "greater than or equal to": FilterOp.GTE,
    "less than": FilterOp.LT,
    "less than or equal to": FilterOp.LTE,
    "contains": FilterOp.SUBSTRING,
    "does not contain": FilterOp.NOT_SUBSTRING,
    "in": FilterOp.IN,
    "in a given set": FilterOp.IN,
}


class PropertyType(models.TextChoices):
    STRING = "string", "String"
    EMAIL = "email", "Email"
    PHONE_NUMBER = "phoneNumber", "Phone number"
    URL = "url", "URL"
    INTEGER = "integer", "Integer"
    FLOAT = "float", "Float"
    BOOLEAN = "boolean", "Boolean"
    DATE = "date", "Date"


class ValueKind(models.TextChoices):
    """Which typed column of RecordProperty holds a property type's value."""

    TEXT = "text", "Text"
    NUMBER = "number", "Number"
    DATETIME = "datetime", "Date and time"
    BOOLEAN = "boolean", "Boolean"


VALUE_KIND_BY_TYPE: dict[str, str] = {
    PropertyType.STRING: ValueKind.TEXT,
    PropertyType.EMAIL: ValueKind.TEXT,
    PropertyType.PHONE_NUMBER: ValueKind.TEXT,
    PropertyType.URL: ValueKind.TEXT,
    PropertyType.INTEGER: ValueKind.NUMBER,
    PropertyType.FLOAT: ValueKind.NUMBER,
    PropertyType.BOOLEAN: ValueKind.BOOLEAN,
    PropertyType.DATE: ValueKind.DATETIME,
}


class GroupMatchType(models.TextChoices):
    ALL = "all", "All rules match"
    ANY = "any", "Any rule matches"


class RuleOp(models.TextChoices):
    """Group rule operations. Which ones suit which property type: RULE_OPS_BY_KIND."""

    EQ = "eq", "is equal to"
    NE = "ne", "is not equal to"
    EXISTS = "exists", "exists"
    NOT_EXISTS = "notExists", "does not exist"
    GT = "gt", "is greater than"
    GTE = "gte", "is greater than or equal to"
    LT = "lt", "is less than"
    LTE = "lte", "is less than or equal to"
    SUBSTRING = "substring", "contains"
    NOT_SUBSTRING = "notSubstring", "does not contain"
    STARTS_WITH = "startsWith", "starts with"
    ENDS_WITH = "endsWith", "ends with"
    IN = "in", "is one of"
    IN_LAST = "inLast", "in the last"
    IN_NEXT = "inNext", "in the next"


class RelativeUnit(models.TextChoices):
    DAYS = "days", "days"
    WEEKS = "weeks", "weeks"
    MONTHS = "months", "months"
    QUARTERS = "quarters", "quarters"
    YEARS = "years", "years"


_COMMON_OPS = (RuleOp.EQ, RuleOp.NE, RuleOp.EXISTS, RuleOp.NOT_EXISTS)
RULE_OPS_BY_KIND: dict[str, tuple[str, ...]] = {
    ValueKind.TEXT: _COMMON_OPS
    + (
        RuleOp.SUBSTRING,
        RuleOp.NOT_SUBSTRING,
        RuleOp.STARTS_WITH,
        RuleOp.ENDS_WITH,
        RuleOp.IN,
        RuleOp.GT,
        RuleOp.GTE,
        RuleOp.LT,
        RuleOp.LTE,
    ),
    ValueKind.NUMBER: _COMMON_OPS + (RuleOp.GT, RuleOp.GTE, RuleOp.LT, RuleOp.LTE, RuleOp.IN),
    ValueKind.DATETIME: _COMMON_OPS
    + (RuleOp.GT, RuleOp.GTE, RuleOp.LT, RuleOp.LTE, RuleOp.IN_LAST, RuleOp.IN_NEXT),
    ValueKind.BOOLEAN: _COMMON_OPS,
}

RELATIVE_RULE_OPS = (RuleOp.IN_LAST, RuleOp.IN_NEXT)
# Operations that take no match value.
VALUELESS_RULE_OPS = (RuleOp.EXISTS, RuleOp.NOT_EXISTS)


class SyncMode(models.TextChoices):
    SYNC = "sync", "Sync: add, update and remove records"
    ADDITIVE = "additive", "Additive: add and update, never remove"
    ENRICH = "enrich", "Enrich: only update records that already exist"


class DestinationCollection(models.TextChoices):
    NONE = "none", "Nothing"
    GROUP = "group", "One group"
    MODEL = "model", "The whole model"


class RecordState(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"
    DELETED = "deleted", "Deleted"


class RecordPropertyState(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"


class RunState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETE = "complete", "Complete"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"


ACTIVE_RUN_STATES = (RunState.PENDING, RunState.RUNNING)


class RunPhase(models.TextChoices):
    IMPORTING = "importing", "Importing"
    PROCESSING = "processing", "Processing"
    # Runs no longer wait for their exports to be sent; an earlier version left runs in this
    # phase, and resuming one completes it (core.engine.runs.run_complete).
    EXPORTING = "exporting", "Exporting"
    DONE = "done", "Done"


class RunCreator(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    GROUP = "group", "Group"
    PROPERTY = "property", "Property"
    DESTINATION = "destination", "Destination"
    MANUAL = "manual", "Manual"


class ExportState(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    COMPLETE = "complete", "Complete"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    # Failed, then replaced by a newer export of the same record: no longer counted as failed.
    SUPERSEDED = "superseded", "Failed, superseded by a newer export"


class ErrorLevel(models.TextChoices):
    ERROR = "error", "Error (retried)"
    INFO = "info", "Info (final, not retried)"


class ApiTopic(models.TextChoices):
    MODELS = "models", "Models"
    APPS = "apps", "Apps"
    SOURCES = "sources", "Sources"
    PROPERTIES = "properties", "Properties"
    SCHEDULES = "schedules", "Schedules"
    RECORDS = "records", "Records"
    GROUPS = "groups", "Groups"
    DESTINATIONS = "destinations", "Destinations"
    RUNS = "runs", "Runs"
    IMPORTS = "imports", "Imports"
    EXPORTS = "exports", "Exports"
    API_KEYS = "apiKeys", "API keys"
    SETTINGS = "settings", "Settings"
    SYSTEM = "system", "System"


class SettingType(models.TextChoices):
    STRING = "string", "String"
    NUMBER = "number", "Number"
    BOOLEAN = "boolean", "Boolean"
