"""Test support code (not collected as tests): the local Hub server and shared helpers."""
