from slurmdag.cli import main

main()
