"""The XICI study: identification (Mann-Whitney U, BH, threshold, blacklist, cap), ablation plans and
metrics, paper Tables 1-2, figures. Imports core.
"""
