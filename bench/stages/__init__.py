"""The benchmark's stages, in the order bench/run.py runs them: items → methods (train) → plan → generate → detect →
score → log (with the qualitative material)."""
