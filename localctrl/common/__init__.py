"""Plumbing shared by the method, the benchmark and the reports: files, tracking, checkpoints, grids, seeding."""
