from zsas_gui.app import main

main()
