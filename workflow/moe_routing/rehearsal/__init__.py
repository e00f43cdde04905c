"""What exists only to rehearse the paper configs on a CPU: stand-ins of the paper models, tiny
checkpoints of every family, synthetic dataset mirrors in the published layouts, chat templates.
Imports core, data, capture, judging.
"""
