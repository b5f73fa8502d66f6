"""Presenting: paper tables and figures built from MLflow runs."""
