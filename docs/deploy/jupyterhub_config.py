"""JupyterHub for an Expression Lab course on one machine (see docs/deployment.md).

Every person has a Unix account; the hub starts each one's JupyterLab as that account (LocalProcessSpawner),
so file permissions keep students apart. nbgrader moves files between them through a shared exchange folder.
Run as root: ``jupyterhub -f jupyterhub_config.py``. ``tests/test_hub.py`` runs this file (with a test
authenticator and random ports), so what it says is what the test checks.

Settings read from the environment (the defaults are for a real install):

=================================  ==============================================  ===========================
variable                           what                                            default
=================================  ==============================================  ===========================
EXPRESSION_LAB_VENV                the kit's virtual environment; every user must  /opt/expression-lab/.venv
                                   be able to read it and run its ``bin/``
EXPRESSION_LAB_JUPYTER_CONFIG      folder holding the course-wide                  /etc/expression-lab/jupyter
                                   ``nbgrader_config.py`` (docs/deploy/)
NBGRADER_EXCHANGE                  nbgrader's exchange, mode 1777                  /srv/nbgrader/exchange
EXPRESSION_LAB_HUB_STATE           the hub's database, cookie secret, proxy pid    /srv/jupyterhub
EXPRESSION_LAB_HUB_URL             public address of the hub (behind TLS)          http://:8000
EXPRESSION_LAB_HUB_API_URL         where the hub listens for its servers           http://127.0.0.1:8081
EXPRESSION_LAB_PROXY_API_URL       configurable-http-proxy's API                   http://127.0.0.1:8001
EXPRESSION_LAB_KIT                 extra PYTHONPATH for the kit (a checkout);      (unset: the kit is installed
                                   leave unset when the kit is pip-installed        in the venv)
EXPRESSION_LAB_HUB_GROUP           Unix group whose members may log in             expression-lab
=================================  ==============================================  ===========================
"""

import os

c = get_config()  # noqa: F821 (injected by traitlets)

venv = os.environ.get("EXPRESSION_LAB_VENV", "/opt/expression-lab/.venv")
state = os.environ.get("EXPRESSION_LAB_HUB_STATE", "/srv/jupyterhub")

c.JupyterHub.bind_url = os.environ.get("EXPRESSION_LAB_HUB_URL", "http://:8000")
c.JupyterHub.hub_bind_url = os.environ.get("EXPRESSION_LAB_HUB_API_URL", "http://127.0.0.1:8081")
c.ConfigurableHTTPProxy.api_url = os.environ.get("EXPRESSION_LAB_PROXY_API_URL", "http://127.0.0.1:8001")
c.ConfigurableHTTPProxy.pid_file = os.path.join(state, "jupyterhub-proxy.pid")
c.JupyterHub.db_url = "sqlite:///" + os.path.join(state, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(state, "jupyterhub_cookie_secret")

# Log in with the machine's passwords (PAM); only members of the course group.
c.JupyterHub.authenticator_class = "pam"
c.LocalAuthenticator.allowed_groups = {os.environ.get("EXPRESSION_LAB_HUB_GROUP", "expression-lab")}

# Each user's JupyterLab runs as that user, from the kit's environment, in the user's home.
c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"
c.Spawner.cmd = [os.path.join(venv, "bin", "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.environment = {
    # nbgrader and the kernels run commands (alembic, python) from PATH: the venv's first.
    "PATH": os.pathsep.join([os.path.join(venv, "bin"), "/usr/local/bin", "/usr/bin", "/bin"]),
    # The course-wide nbgrader_config.py (course id, exchange) is found on Jupyter's config path.
    "JUPYTER_CONFIG_PATH": os.environ.get("EXPRESSION_LAB_JUPYTER_CONFIG", "/etc/expression-lab/jupyter"),
    "NBGRADER_EXCHANGE": os.environ.get("NBGRADER_EXCHANGE", "/srv/nbgrader/exchange"),
}
if os.environ.get("EXPRESSION_LAB_KIT"):
    c.Spawner.environment["PYTHONPATH"] = os.environ["EXPRESSION_LAB_KIT"]
