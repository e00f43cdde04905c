"""The workflow's glue: the plan of jobs, rule inputs and options (jobs, commands), config validation,
cluster resources, MoE layers from config.json. Imports core, data, capture, rehearsal.
"""
