"""Helpers that the measurement scripts of ``benchmarks/`` and ``studies/`` share, under public names: timing against
the machine's ceiling, per-run report tables, map artefact ratios, lesion-kind masks. The product does not use
them."""
