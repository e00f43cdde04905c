"""The foundation: errors and their exit codes, OS/GPU faults, atomic checked file I/O, file contracts,
Parquet footer checks, progress lines, and paths (every file pattern of the workflow; repository files).
Imports nothing else of the package.
"""
