"""`datacenter keys init | show | rotate-envelope`: the data centre's batch and receipt keys (datacenter/ingest/keys.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from datacenter.commands.options import config_option, load_configured_settings, with_hint
from datacenter.ingest.envelope_rotation import overlap_end, rotate_envelope
from datacenter.ingest.keys import DEFAULT_NAME, ensure_keys
from shared.errors import CallCollectError
from shared.keys import fingerprint, load_datacentre_certificates


@click.group("keys")
def keys_group() -> None:
    """The data centre's keys: batch decryption, receipt signing, and the agents' bundle."""


@keys_group.command("init")
@click.option("--name", default=DEFAULT_NAME, show_default=True,
              help="Organisation name written into the two certificates.")  # fmt: skip
@config_option
def keys_init_command(name: str, config_path: Path | None) -> None:
    """Create the data centre's keys if there are none, and print where the agents' bundle is.

    Makes an RSA 3072 envelope key (agents encrypt batches to its certificate), an Ed25519
    receipts key (receipts are signed with it) and the bundle of both public certificates that
    every appliance installs as delivery.datacentre_certificates. Existing keys are never
    replaced, so running it again only prints the bundle and its fingerprints. `datacenter init`
    does the same. Back up the two private keys: without the envelope key no batch sealed for
    this data centre can be read.

    \b
    Example:
      datacenter keys init --config /etc/callcollect/datacenter.toml
    """
    settings = load_configured_settings(config_path)
    try:
        report = ensure_keys(settings.keys, name=name)
    except OSError as exc:
        raise click.ClickException(
            f"cannot write the keys under {settings.keys.envelope_key.parent}: {exc.strerror}; "
            "make the folder writable or set the keys.* paths"
        ) from exc
    for line in report.describe():
        click.echo(line)


@keys_group.command("show")
@config_option
def keys_show_command(config_path: Path | None) -> None:
    """Print the agents' bundle: its path, fingerprints and the PEM to send to a site.

    \b
    Example:
      datacenter keys show > datacentre-certificates.pem
    """
    settings = load_configured_settings(config_path)
    bundle = settings.keys.certificates
    try:
        certificates = load_datacentre_certificates(bundle)
    except CallCollectError as exc:
        raise with_hint(exc, "; run `datacenter keys init` first") from exc
    click.echo(f"# {bundle}")
    click.echo(f"# envelope {fingerprint(certificates.envelope)}")
    click.echo(f"# receipts {fingerprint(certificates.receipts)}")
    click.echo(certificates.to_pem().decode("ascii"), nl=False)


@keys_group.command("rotate-envelope")
@click.option("--overlap-days", default=30, show_default=True, type=click.IntRange(1, 365),
              help="How long batches sealed for the current envelope key are still opened.")  # fmt: skip
@config_option
def keys_rotate_envelope_command(overlap_days: int, config_path: Path | None) -> None:
    """Replace the envelope key; keep opening batches sealed for the current one for a while.

    Writes a new envelope key and bundle (the receipts key stays). Send every site the new
    bundle (`datacenter keys show`, or approve its request again for a new landing bundle) and
    have it installed with `edge-agent enroll --import`; batches the agents sealed before are
    opened with the previous key until the overlap ends. Restart the ingest workers.

    \b
    Example:
      datacenter keys rotate-envelope --overlap-days 30
    """
    settings = load_configured_settings(config_path)
    bundle = rotate_envelope(settings.keys, overlap=timedelta(days=overlap_days))
    until = overlap_end(settings.keys)
    click.echo(
        f"new envelope certificate {fingerprint(bundle.envelope)} in {settings.keys.certificates}"
    )
    click.echo(f"the previous envelope key is accepted until {until:%Y-%m-%d %H:%M} UTC")
