from wulin.cli import main

main()
