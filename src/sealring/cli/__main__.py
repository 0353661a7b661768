from sealring.cli import main

main()
