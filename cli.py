"""The `localctrl` command line: thin commands that parse options and call localctrl / bench / reports."""

import subprocess
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Local control of text-to-image diffusion: train masked T2I-Adapters, benchmark, report.", no_args_is_help=True)
console = Console()

# Commands whose issue has not landed yet: they say so and fail, rather than print anything fake.
NOT_BUILT = {
    "train": ("Train a local adapter (masked features + z0 edge loss), tracked in MLflow.", 4),
    "sample": ("Sample images with a local adapter, masks and conditions.", 4),
    "bench": ("Run a benchmark suite: generate, detect, score, log.", 5),
    "report": ("Write paper tables and figures from MLflow runs.", 6),
    "data": ("Write datasets in the manifest format (e.g. the shapes world).", 3),
}


def _not_built(name: str, issue: int):
    def command(ctx: typer.Context) -> None:
        console.print(f"[red]localctrl {name} is not built yet[/red] (planned in issue {issue}); nothing was run.")
        raise typer.Exit(2)

    return command


for _name, (_help, _issue) in NOT_BUILT.items():
    app.command(
        _name,
        help=f"{_help} [not built yet]",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(_not_built(_name, _issue))


@app.command()
def doctor() -> None:
    """Print versions, device, the MLflow store in use, and which pretrained components are available."""
    from bench.doctor import report

    found = report()
    versions = Table("package", "version", title="Versions")
    for name, value in found["versions"].items():
        versions.add_row(name, value)
    console.print(versions)
    console.print(f"Device: {found['device']}")
    console.print(f"MLflow tracking URI: {found['tracking_uri']}")
    components = Table("component", "used for", "source", "status", title="Pretrained components")
    for status in found["components"]:
        part = status.component
        state = f"[green]available[/green] {status.location}" if status.location else "[yellow]missing[/yellow]"
        components.add_row(part.name, part.used_for, part.source, state)
    console.print(components)
    missing = [status.component for status in found["components"] if status.location is None]
    if missing:
        console.print(f"How to provide what is missing (Hugging Face cache looked in: {found['hub_cache']}):")
        for part in missing:
            console.print(f"  {part.name}: {part.how}")
    console.print("Always available offline: the tiny and sd15-random stacks (random weights, for mechanics and speed).")


@app.command()
def stack(
    base: Annotated[str, typer.Argument(help="tiny | sd15-random | a diffusers pipeline folder | a cached hub id")] = "tiny",
    seed: Annotated[int, typer.Option(help="Seed of random-weight stacks.")] = 0,
    adapter: Annotated[str, typer.Option(help="Also build a random adapter of this kind (full | light) and check it fits; '' for none.")] = "full",
    save: Annotated[Path | None, typer.Option(help="Write the stack (and adapter) in the diffusers folder format here.")] = None,
) -> None:
    """Load or build a model stack, print its parts and check an adapter lines up with its UNet."""
    from localctrl.adapters import adapter_feature_shapes, build_adapter
    from localctrl.stacks import RANDOM_BASES, load_stack

    loaded = load_stack(base, seed=seed)
    table = Table("module", "parameters", title=f"Stack {loaded.source} ({loaded.image_size}² images)")
    for name, count in loaded.parameter_counts().items():
        table.add_row(name, f"{count / 1e6:.2f} M")
    table.add_row("tokenizer", f"{len(loaded.tokenizer)} tokens")
    table.add_row("scheduler", type(loaded.scheduler).__name__)
    console.print(table)
    built = None
    if adapter and base in RANDOM_BASES:
        built = build_adapter(RANDOM_BASES[base], adapter, seed=seed)
        loaded.check_adapter(built)
        console.print(f"{adapter} adapter features {adapter_feature_shapes(built, loaded.image_size)} fit the UNet's down blocks.")
    if save is not None:
        loaded.save_pretrained(save)
        if built is not None:
            built.save_pretrained(save / f"adapter-{adapter}", safe_serialization=True)
        console.print(f"Saved to {save.resolve()}")


@app.command()
def ui(
    host: Annotated[str, typer.Option(help="Interface to bind; 127.0.0.1 keeps runs private to this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
) -> None:
    """Open the MLflow UI on the store localctrl logs to (MLFLOW_TRACKING_URI or ./localctrl-runs)."""
    from localctrl.tracking import tracking_uri, ui_command

    console.print(f"MLflow UI for {tracking_uri()} at http://{host}:{port} (Ctrl-C to stop)")
    try:
        raise typer.Exit(subprocess.call(ui_command(host=host, port=port)))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


if __name__ == "__main__":
    app()
