"""The application layer: one module per use case (a day, sync, serve, demo, init, check,
validate, import, export). It owns the rules a command applies, wires providers from the plan's
settings and leaves parsing and exit codes to ``warmup.cli``.

Kept empty of imports: the CLI imports small constants from here at every start.
"""
