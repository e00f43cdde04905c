import logging
import multiprocessing
import os
import sys

from moe_routing.cli import main

rc = main()
for child in multiprocessing.active_children():
    child.join(timeout=0.5)  # a vLLM engine the stage closed is being killed: let it go
if not multiprocessing.active_children():
    # every output is written and closed: skip the interpreter's teardown, which spends seconds in native
    # cleanup once torch or vLLM is imported (seconds per job of a run). A stage that left child
    # processes running (a vLLM engine not closed) exits normally so their shutdown hooks run.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc if isinstance(rc, int) else 0)
raise SystemExit(rc)
