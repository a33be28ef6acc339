"""grouparoo-jsonl: JSON Lines files as a Grouparoo-py source and destination (an example plugin)."""
