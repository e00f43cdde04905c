"""The foundation: errors and their exit codes, OS/GPU faults, atomic checked file I/O, file contracts,
Parquet footer checks, progress lines. Imports nothing else of the package.
"""
