"""Grouparoo's demo, reproduced for the tests: source data with the demo's schema (`data`), the
config directory assembled the way `grouparoo demo --config` assembles it (`assemble`), and the
records, groups and destination rows Grouparoo's semantics give for them (`expected`)."""
