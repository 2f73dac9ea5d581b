"""Guards that keep inputs, outputs and run folders intact under faults and bad input.

- ``atomic``: every output file is written under a temporary name in its folder, then renamed;
- ``paths``: outputs never land on an input file or in a dataset folder; input stems never collide;
- ``locks``: one process at a time per run / output folder (a lock file with the pid, stale locks taken over);
- ``finite``: non-finite pixels are refused or replaced by a documented rule (``--nan-policy``);
- ``errors``: which exceptions become a one-line message with exit code 2 (``--debug`` shows tracebacks).
"""
