"""Router capture and interventions: one adapter per model family (adapters/), the transformers and
vLLM backends (backends/), intervention tables, the per-token accumulator. Imports core and data.
"""
