"""The CPU demo: the synthetic fact world, its templates, the demo model built with planted experts, its
planted truth and the demo scored against it. Imports core, data, xici."""
