from capsight._cli.main import main

raise SystemExit(main())
