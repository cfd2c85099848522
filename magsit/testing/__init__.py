"""Test hooks that are inert in production (see crashpoints)."""
