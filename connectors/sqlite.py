"""Placeholder: replaced by the real sqlite connector."""
