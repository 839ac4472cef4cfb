"""Course-wide nbgrader settings on a JupyterHub (see docs/deployment.md).

Students: put this file in the folder named by ``JUPYTER_CONFIG_PATH`` (the hub's ``jupyterhub_config.py`` sets it
to /etc/expression-lab/jupyter), so that the Assignments tab and ``nbgrader fetch_assignment`` find the course.
Instructor: append it to the course's own ``nbgrader_config.py`` (``cat docs/deploy/nbgrader_config.py >>
nbgrader_config.py`` in the course checkout), so that it replaces the kit's local exchange under grading/.
"""

import os

c = get_config()  # noqa: F821 (injected by traitlets)

c.CourseDirectory.course_id = "expression-lab"
# One exchange for every course on the machine; each course in its own sub-folder, so assignments of two
# courses with the same name never collide (nbgrader: Exchange.path_includes_course).
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE", "/srv/nbgrader/exchange")
c.Exchange.path_includes_course = True
