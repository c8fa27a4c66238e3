"""`manage.py demo` and `manage.py emulate --state`: the same emulated world after a restart."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model

from runs.management.commands.demo import (
    DEMO_ORCHESTRATORS,
    admin_ensure,
    admin_lines,
    demo_emulator,
    emulator_state_dir,
)
from runs.orchestrators.emulation import EmulatorApp
from tests.factories import make_orchestrator, make_run, make_schedule

pytestmark = pytest.mark.django_db
KINDS = pytest.mark.parametrize("kind", list(DEMO_ORCHESTRATORS))


def world(app: EmulatorApp) -> dict:
    """What the emulator shows of its estate (runs and their ids included)."""
    with app.lock:
        app.advance(app.now())
        return app.state()


@KINDS
def test_it_keeps_the_same_world_across_two_demos_on_one_data_dir(kind, settings, tmp_path):
    settings.DATA_DIR = tmp_path / "var"
    first, note = demo_emulator(kind, scale=0.1, state_dir=emulator_state_dir())
    first.close()
    assert note.startswith("No saved") and str(tmp_path / "var" / "emulators") in note
    saved = world(first)

    second, note = demo_emulator(kind, scale=0.1, state_dir=emulator_state_dir())
    second.close()
    assert note.startswith(f"Resumed the {kind} estate")
    assert world(second) == saved

    # `make run` after deleting var/: a new world, from the seed.
    shutil.rmtree(settings.DATA_DIR)
    third, note = demo_emulator(kind, scale=0.1, state_dir=emulator_state_dir())
    third.close()
    assert note.startswith("No saved") and "starting a new" in note


def test_it_warns_when_a_new_estate_meets_runs_of_an_old_one(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    name = DEMO_ORCHESTRATORS["leapwork"][0]
    make_run(make_schedule(make_orchestrator(name=name)))
    app, note = demo_emulator("leapwork", scale=0.1, state_dir=emulator_state_dir())
    app.close()
    assert f"The database still holds {name}'s runs" in note and str(tmp_path) in note


def test_it_creates_the_admin_once_and_then_says_how_to_reset_its_password():
    username, password = admin_ensure()
    assert username == "admin" and password
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert password in admin_lines(username, password)[0]

    again = admin_ensure()
    assert again == ("admin", None)
    lines = admin_lines(*again)
    assert "Reusing the existing user 'admin'" in lines[0]
    assert "python manage.py changepassword admin" in lines[1]


def emulate(*args: str) -> str:
    """Run `manage.py emulate` until it serves, then stop it as Ctrl-C would; its output."""
    manage = Path(django_settings.BASE_DIR) / "manage.py"
    process = subprocess.Popen(
        [sys.executable, str(manage), "emulate", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if " emulator at " in line:
            break
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    return "".join(lines) + out


def test_emulate_resumes_the_estate_it_saved_with_state(tmp_path):
    state = tmp_path / "ts.json"
    args = ("testsigma", "--port", "0", "--history", "1", "--seed", "5", "--state", str(state))
    assert "No saved testsigma estate" in emulate(*args)
    assert state.exists()
    assert "Resumed the testsigma estate saved at" in emulate(*args)
    assert "seed 5 (not 6)" in emulate(*args[:-3], "6", "--state", str(state))
