from moe_routing.cli import main

raise SystemExit(main())
