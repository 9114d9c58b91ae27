"""Helpers of the tests that are not fixtures: servers and their controls."""
