"""Guards that keep inputs, outputs and run folders intact under faults and bad input (issue 15).

- ``atomic``: every output file is written under a temporary name in its folder, then renamed;
- ``partial``: large outputs carry an ``.unfinished`` name and a progress file until complete (``--resume``);
- ``paths``: outputs never land on an input file or in a dataset folder; input stems never collide;
- ``locks``: one process at a time per run / output folder (a lock file with the pid, stale locks taken over);
- ``runs``: absolute data paths and a data fingerprint in checkpoints; run folders repaired on resume;
- ``finite``: non-finite pixels are refused or replaced by a documented rule (``--nan-policy``);
- ``labels``: multiclass class ids without gaps unless the classes are declared;
- ``memory``: images whose header asks for more memory than the machine has are refused before reading;
- ``options``: range checks of CLI options that are not config keys (config keys: ``unetkit.config_rules``);
- ``errors``: which exceptions become one line with exit code 2 (``--debug`` shows tracebacks).
"""
