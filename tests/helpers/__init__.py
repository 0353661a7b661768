"""Test helpers shared across areas: import them from here, never from a conftest module."""
