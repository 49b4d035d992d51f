"""Room ``commands``: the CLI's commands, one module per group, each command an options
class (declared with :mod:`sc2deploy.options`) and a function that runs it and prints the
outcome with the formatting of the room that owns it.

Modules import only light modules at top level (the options classes): heavy rooms are
imported inside the functions that run.
"""
