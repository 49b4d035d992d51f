"""A real device over ssh (the system ``ssh``/``scp``): ``remote`` reaches it and is
``profile --host``, ``verify`` is ``verify --host``.
"""
