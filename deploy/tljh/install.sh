#!/usr/bin/env bash
# The Littlest JupyterHub (one VM, Ubuntu 22.04/24.04) for the infralab course.
# Run as a sudo-capable user on a fresh VM; sizing in deploy/README.md ("One VM").
#   COMMIT=<the commit you teach> ADMIN=<your user> bash deploy/tljh/install.sh
set -euo pipefail
: "${ADMIN:?set ADMIN to the hub user name of the instructor}"
: "${COMMIT:=main}"
REPO_URL="${REPO_URL:-https://github.com/infralab-course/infralab}"

# 1. TLJH itself (its documented bootstrap), with the instructor as admin.
curl -fsSL https://tljh.jupyter.org/bootstrap.py | sudo python3 - --admin "$ADMIN"

# 2. The kit, read-only for students, installed into the users' shared environment.
sudo git clone "$REPO_URL" /opt/infralab
sudo git -C /opt/infralab checkout "$COMMIT"
sudo /opt/tljh/user/bin/pip install -e '/opt/infralab[lab]'

# 3. Models fetched and built once into a shared cache, writable by the hub's users' group
#    (lessons add derived files such as the RAG index there; the models are named by
#    content hash). Each student's results stay in their own home (INFRALAB_RESULTS).
sudo mkdir -p /opt/infralab-cache
sudo INFRALAB_CACHE=/opt/infralab-cache /opt/tljh/user/bin/python -m infralab fetch
sudo INFRALAB_CACHE=/opt/infralab-cache /opt/tljh/user/bin/python -m infralab build-models --quiet
sudo chgrp -R jupyterhub-users /opt/infralab-cache
sudo chmod -R g+rwX /opt/infralab-cache
sudo find /opt/infralab-cache -type d -exec chmod g+s {} +

# 4. Hub configuration: per-user environment, the course copied into each home, the collector.
sudo cp /opt/infralab/deploy/tljh/infralab_config.py /opt/tljh/config/jupyterhub_config.d/

# 5. Per-user limits from deploy/jupyterhub/values.yaml (measured), and idle culling.
sudo tljh-config set limits.memory 1792M
sudo tljh-config set limits.cpu 2
sudo tljh-config set services.cull.timeout 3600
sudo tljh-config set user_environment.default_app jupyterlab
sudo tljh-config reload
echo "Done. Create a class: sudo /opt/tljh/user/bin/python -m infralab collector \\"
echo "  --db sqlite:////opt/infralab-collector/class.db --create-class 'My class'"
