from ganscape.cli import main

raise SystemExit(main())
