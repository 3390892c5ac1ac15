"""`python -m bulkops.emulator`: the same command as `bulkops emulator`."""

import typer

from bulkops.emulator.command import emulator

app = typer.Typer(add_completion=False)
app.command()(emulator)

if __name__ == "__main__":
    app()
