from mailgate.cli.main import main

raise SystemExit(main())
