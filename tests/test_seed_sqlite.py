"""``make run``'s path: a fresh SQLite file, migrated and seeded. After the seed commits, one
recompute per cycle runs in background threads at the same time; on SQLite they used to fail
with "database is locked" (and the demo's previous quarter kept no health)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_seeds_on_a_fresh_sqlite_file_without_a_locked_database(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    for command in (["migrate", "--noinput", "-v0"], ["seed_demo"]):
        done = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-3000:]
        assert "database is locked" not in output, output[-3000:]
        assert "Traceback" not in output, output[-3000:]
    # Every cycle's recompute ran: none is left marked changed.
    check = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "from django_scopes import scopes_disabled\n"
         "from dependencies.models import NetworkState as N\n"
         "with scopes_disabled():\n"
         "    print('dirty', N.objects.filter(dirty=True).count())"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "dirty 0" in check.stdout, check.stdout + check.stderr
