"""Widgets that display and post messages; they never call the vault."""
