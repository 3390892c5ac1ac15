"""`python -m bulkops.emulator`: the same command as `bulkops emulator`."""

from bulkops.cli.emulator import emulator

if __name__ == "__main__":
    emulator(prog_name="python -m bulkops.emulator")
