"""The command lines of search (argparse lives here, not in the library modules): one module per command,
each with ``add_arguments(parser)`` and ``run(args)``, importing the library only when it runs so that
``--help`` stays instant."""
