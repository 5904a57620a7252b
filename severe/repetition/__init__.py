"""UCF101 repetition counting (UCF-RC, docs/tasks.md §3): cycle-length estimation with an R(2+1)D-18 trunk.

Modules, one job each: ``config`` (schema), ``segments`` (annotations -> videos, seeded training
sub-segments), ``targets`` (anchor targets and loss), ``inputs`` (frames of a state, letterbox),
``model`` (trunk + four heads), ``inference`` (period search and multi-position hierarchy),
``data`` (torch datasets), ``training`` (the state-machine training loop), ``runner`` and ``cli``.
"""
