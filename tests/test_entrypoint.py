import subprocess
import sys


def test_help_and_version():
    out = subprocess.run([sys.executable, "-m", "densescale", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "densescale" in out
    v = subprocess.run([sys.executable, "-m", "densescale", "--version"], capture_output=True,
                       text=True, check=True).stdout.strip()
    from densescale import __version__
    assert v == __version__
