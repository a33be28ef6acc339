"""Placeholder: replaced by the real postgres connector."""
