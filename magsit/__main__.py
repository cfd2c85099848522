from magsit.cli import main

main()
