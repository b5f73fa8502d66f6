"""`localctrl perf`: throughput measured side by side (presets), with its sampling, scoring, training and FLOP parts."""
