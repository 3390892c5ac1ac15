"""`python -m bulkops.emulator`: the same command as `bulkops emulator`."""

from bulkops.emulator.command import emulator

if __name__ == "__main__":
    emulator(prog_name="python -m bulkops.emulator")
