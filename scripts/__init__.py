"""Maintenance scripts (README generation) and the demo."""
