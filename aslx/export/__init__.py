"""Exporting trained models: framework-neutral weights files and on-device formats."""
