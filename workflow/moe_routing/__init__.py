"""Router capture, interventions and statistics for Mixture-of-Experts language models."""

__version__ = "0.1.0"
