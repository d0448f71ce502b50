from densescale.cli import main

main()
