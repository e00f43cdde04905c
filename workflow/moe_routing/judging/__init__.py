"""Judges of model answers: exact/contains, multiple choice, number, LLM judge. Imports core, capture."""
