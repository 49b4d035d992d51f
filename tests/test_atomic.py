"""Atomic writes and output folders: nothing partial, nothing left by a refused command."""

import pytest

from sc2deploy.atomic import output_folder, write_bytes
from sc2deploy.errors import OutputError, UsageError


def test_a_refused_command_takes_back_the_folders_it_made(tmp_path):
    out = tmp_path / "a" / "b"
    with pytest.raises(UsageError):
        with output_folder(out, "--out"):
            assert out.is_dir()
            raise UsageError("refused")
    assert list(tmp_path.iterdir()) == []


def test_what_was_there_or_written_stays(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with output_folder(tmp_path / "new", "--out") as out:
            write_bytes(out / "one.s2c", b"x")
            raise KeyboardInterrupt
    assert (tmp_path / "new" / "one.s2c").read_bytes() == b"x"
    with pytest.raises(UsageError):
        with output_folder(tmp_path, "--out"):  # existed before: never removed
            raise UsageError("refused")
    assert tmp_path.is_dir()


def test_writing_over_a_folder_names_the_folder_not_a_temporary_file(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(OutputError, match=rf"^{tmp_path}/out is a folder; expected the path of "
                                          r"a file to write: name a file \(e.g\. .*/out/NAME\)"):
        write_bytes(tmp_path / "out", b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary file left
