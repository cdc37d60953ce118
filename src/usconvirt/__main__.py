from usconvirt.cli import main

main()
