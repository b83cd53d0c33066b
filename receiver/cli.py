"""`diffusec-receiver` command line (its service arrives with the link issue)."""
import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """DiffuSeC Link receiver service. Its subcommands arrive with the link (gRPC) work."""
