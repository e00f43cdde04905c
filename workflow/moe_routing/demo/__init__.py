"""The CPU demo: the synthetic fact world, its templates, the demo model. Imports core, data."""
