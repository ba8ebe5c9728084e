"""TLJH: /opt/tljh/config/jupyterhub_config.d/infralab_config.py (copied by install.sh).

Each student gets the course notebooks copied into ~/infralab on first start (their own
editable copy; the kit's package and data stay read-only in /opt/infralab), results in their
own home, and the shared model cache. The class collector runs as a hub-managed service.
"""

import os
import shutil
from pathlib import Path

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

c.Spawner.environment = {
    "INFRALAB_CACHE": "/opt/infralab-cache",
    "INFRALAB_RESULTS": "{home}/infralab/results",  # filled in per user below
}


def _course_copy(spawner):
    """Copy course/ and labs/ into the user's home once; fill the per-user paths."""
    import pwd

    account = pwd.getpwnam(f"jupyter-{spawner.user.name}")  # TLJH's system user name
    home = Path(account.pw_dir)
    target = home / "infralab"
    for part in ("course", "labs"):
        if not (target / part).exists():
            shutil.copytree(f"/opt/infralab/{part}", target / part)
            for path in [target, *target.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid)
    spawner.environment = {k: v.format(home=home) for k, v in c.Spawner.environment.items()}


c.Spawner.pre_spawn_hook = _course_copy

os.makedirs("/opt/infralab-collector", mode=0o700, exist_ok=True)  # the class database is private
c.JupyterHub.services.append(
    {
        "name": "class-collector",
        "url": "http://127.0.0.1:8765",
        "command": [
            "/opt/tljh/user/bin/python",
            "-m",
            "infralab",
            "collector",
            "--db",
            "sqlite:////opt/infralab-collector/class.db",
            "--port",
            "8765",
        ],
        "environment": {"INFRALAB_COLLECTOR_TOKEN": os.environ.get("INFRALAB_COLLECTOR_TOKEN", "")},
        "display": True,
    }
)
