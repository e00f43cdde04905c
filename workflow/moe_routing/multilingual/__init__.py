"""The multilingual routing study: divergence, entropy, consistency, correlation, specialisation;
steering plans and table; figures. Imports core.
"""
