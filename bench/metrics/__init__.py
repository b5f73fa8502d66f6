"""Metrics of the benchmark: set metrics (FID, KID, CLIP score), per-sample masked metrics and control fidelity, CIs.

Functions over batches (a small functional surface, as clean-fid's), one module per family: each returns per-sample
values, which the benchmark keeps (parquet) and aggregates with bootstrap CIs (bootstrap). `registry` names every
metric key: its label, direction, unit and cap. Every network-backed metric takes its weights from disk only
(localctrl.models.weights says where) and raises MetricUnavailable otherwise; stand-ins with random weights say so
in their names.
"""
