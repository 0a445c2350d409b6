"""Key files: written private, read back exactly, and the wrong or broken file is named clearly."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from itb.link.keys import (
    KeyFileError,
    KeyOwner,
    load_private_key,
    load_public_key,
    public_key_of,
    write_keypair,
)


def test_a_keypair_round_trips_and_the_private_file_is_0600(tmp_path: Path) -> None:
    private_path, public_path = write_keypair(tmp_path, KeyOwner.PROGRAMMER)
    assert private_path.name == "programmer.key" and public_path.name == "programmer.pub"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    private_key = load_private_key(private_path, KeyOwner.PROGRAMMER)
    assert load_public_key(public_path, KeyOwner.PROGRAMMER) == public_key_of(private_key)


def test_an_existing_key_is_never_overwritten(tmp_path: Path) -> None:
    write_keypair(tmp_path, KeyOwner.PUMP)
    with pytest.raises(KeyFileError, match="already exists"):
        write_keypair(tmp_path, KeyOwner.PUMP)


def test_the_wrong_key_file_is_named(tmp_path: Path) -> None:
    _private_path, public_path = write_keypair(tmp_path, KeyOwner.PROGRAMMER)
    with pytest.raises(KeyFileError, match="holds a programmer public key; expected a progr"):
        load_private_key(public_path, KeyOwner.PROGRAMMER)
    with pytest.raises(KeyFileError, match="expected a pump public key"):
        load_public_key(public_path, KeyOwner.PUMP)
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    with pytest.raises(KeyFileError, match="not an OpenITB key file"):
        load_public_key(other, KeyOwner.PUMP)
    with pytest.raises(KeyFileError, match="cannot read"):
        load_public_key(tmp_path / "missing.pub", KeyOwner.PUMP)


def test_a_corrupted_key_file_is_refused(tmp_path: Path) -> None:
    _private_path, public_path = write_keypair(tmp_path, KeyOwner.PROGRAMMER)
    text = public_path.read_text()
    public_path.write_text(text.replace(text.splitlines()[2][:10], "!!!!!!!!!!"))
    with pytest.raises(KeyFileError, match="corrupted public key"):
        load_public_key(public_path, KeyOwner.PROGRAMMER)


def test_a_private_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    private_path, _ = write_keypair(tmp_path, KeyOwner.PROGRAMMER)
    private_path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_private_key(private_path, KeyOwner.PROGRAMMER)
