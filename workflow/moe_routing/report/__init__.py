"""One model's numbers on one page (summary.md). Imports core, capture, xici, multilingual."""
