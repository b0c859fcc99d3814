"""Test support: server fixtures (see tests/conftest.py) and helpers shared by the suites."""
